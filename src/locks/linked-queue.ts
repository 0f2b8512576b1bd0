// A FIFO whose every operation is O(1), removal of any member included: 60k pending lock
// requests must cost the same per request as 1k, so no array shifts or list scans.

export interface QueueNode<T> {
  readonly value: T;
  /** @internal */ prev: QueueNode<T> | undefined;
  /** @internal */ next: QueueNode<T> | undefined;
  /** @internal */ owner: LinkedQueue<T> | undefined;
}

export class LinkedQueue<T> {
  #head: QueueNode<T> | undefined;
  #tail: QueueNode<T> | undefined;
  #size = 0;

  get size(): number {
    return this.#size;
  }

  /** Appends `value`; the node identifies it for remove(). */
  push(value: T): QueueNode<T> {
    const node: QueueNode<T> = { value, prev: this.#tail, next: undefined, owner: this };
    if (this.#tail === undefined) this.#head = node;
    else this.#tail.next = node;
    this.#tail = node;
    this.#size++;
    return node;
  }

  peek(): T | undefined {
    return this.#head?.value;
  }

  shift(): T | undefined {
    const node = this.#head;
    if (node === undefined) return undefined;
    this.remove(node);
    return node.value;
  }

  /** Removes `node` if it is still in this queue; returns whether it was. */
  remove(node: QueueNode<T>): boolean {
    if (node.owner !== this) return false;
    if (node.prev === undefined) this.#head = node.next;
    else node.prev.next = node.next;
    if (node.next === undefined) this.#tail = node.prev;
    else node.next.prev = node.prev;
    node.prev = node.next = node.owner = undefined;
    this.#size--;
    return true;
  }
}
