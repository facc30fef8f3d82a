/** Bytes sent so far, and the total when it is known up front. */
export interface UploadProgress {
  loaded: number;
  total: number | undefined;
}

/** What an upload accepts: whole bodies report a total, streams do not. */
export type UploadBody = Blob | Uint8Array | ReadableStream<Uint8Array> | AsyncIterable<Uint8Array>;

// progress granularity for in-memory bodies; a stream reports per chunk it yields
const CHUNK = 64 * 1024;

/** A stream over `body` that reports how much of it was read. */
export function countingStream(
  body: UploadBody,
  onProgress: ((progress: UploadProgress) => void) | undefined,
): ReadableStream<Uint8Array> {
  const total = body instanceof Blob ? body.size : body instanceof Uint8Array ? body.byteLength : undefined;
  let source: AsyncIterator<Uint8Array>;
  if (body instanceof Uint8Array) {
    source = (async function* () {
      for (let i = 0; i < body.byteLength; i += CHUNK) yield body.subarray(i, i + CHUNK);
    })();
  } else if (body instanceof Blob) {
    source = (body.stream() as unknown as AsyncIterable<Uint8Array>)[Symbol.asyncIterator]();
  } else {
    source = (body as AsyncIterable<Uint8Array>)[Symbol.asyncIterator]();
  }
  let loaded = 0;
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      const next = await source.next();
      if (next.done) {
        controller.close();
        return;
      }
      loaded += next.value.byteLength;
      controller.enqueue(next.value);
      onProgress?.({ loaded, total });
    },
    async cancel(reason) {
      await source.return?.(reason);
    },
  });
}
