// The publish scenarios' conventions, shared by every server (ours, uWebSockets.js, ws): a receiver's path names
// its topic, and the sender's path the number of topics its messages are spread over (see PublishJob). All
// servers do the same bookkeeping with the same code, so that what differs is their publish.

const TOPIC_PREFIX = '/topic/';
const PUBLISH_PREFIX = '/publish/';

/** The topic a client at `path` subscribes to: `'17'` for `/topic/17`; `undefined` for any other path. */
export function topicOfPath(path: string): string | undefined {
  return path.startsWith(TOPIC_PREFIX) ? path.slice(TOPIC_PREFIX.length) : undefined;
}

/** The topics of a publisher, taken in turn: message k goes to topic k mod T, so the publishes spread evenly. */
export class Publisher {
  readonly #topics: readonly string[];
  #next = 0;

  constructor(count: number) {
    if (!(Number.isInteger(count) && count >= 1)) throw new RangeError(`A publisher needs 1 or more topics, not ${count}.`);
    this.#topics = Array.from({ length: count }, (_, index) => String(index));
  }

  /** The publisher of a client at `path` (`/publish/<T>`), or `undefined` for any other path. */
  static ofPath(path: string): Publisher | undefined {
    return path.startsWith(PUBLISH_PREFIX) ? new Publisher(Number(path.slice(PUBLISH_PREFIX.length))) : undefined;
  }

  /** The topic of the next message. */
  next(): string {
    const topic = this.#topics[this.#next]!;
    this.#next = this.#next + 1 === this.#topics.length ? 0 : this.#next + 1;
    return topic;
  }
}
