import Foundation

extension GuardedDownload {
    /// The URL's body as an async sequence of pieces, as they arrive, at most `ahead` pieces ahead of the
    /// reader: libcurl's transfer runs on a thread of its own and waits while the reader is that far
    /// behind, so memory stays flat whatever the file's size. The transfer stops when the reader stops
    /// iterating or its task is cancelled; a failure ends the sequence with a `Failure`.
    public func pieces(_ url: String, ahead: Int = 4) -> DownloadPieces {
        let window = ReadWindow(ahead: ahead)
        let (stream, continuation) = AsyncThrowingStream<[UInt8], any Error>.makeStream()
        continuation.onTermination = { _ in window.close() }
        let download = self
        let thread = Thread {
            do {
                try download.fetch(url) { piece in
                    continuation.yield(piece)
                    return window.waitForRoom()
                }
                continuation.finish()
            } catch {
                continuation.finish(throwing: error)
            }
        }
        thread.name = "recordsURL-download"
        thread.start()
        return DownloadPieces(stream: stream, window: window)
    }
}

/// A download's pieces; each one taken makes room for the transfer to go on.
public struct DownloadPieces: AsyncSequence, Sendable {
    public typealias Element = [UInt8]
    let stream: AsyncThrowingStream<[UInt8], any Error>
    let window: ReadWindow

    public struct AsyncIterator: AsyncIteratorProtocol {
        var base: AsyncThrowingStream<[UInt8], any Error>.AsyncIterator
        let window: ReadWindow

        public mutating func next() async throws -> [UInt8]? {
            let piece = try await base.next()
            window.taken()
            return piece
        }
    }

    public func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(base: stream.makeAsyncIterator(), window: window)
    }
}

/// How far the transfer is ahead of its reader, under a lock: the transfer's thread waits on the
/// condition while it is `ahead` pieces ahead, and stops once the reader is gone.
final class ReadWindow: @unchecked Sendable {
    private let condition = NSCondition()
    private let ahead: Int
    private var given = 0
    private var takenCount = 0
    private var closed = false

    init(ahead: Int) {
        self.ahead = max(1, ahead)
    }

    /// Called by the transfer after handing a piece over; false when the reader is gone.
    func waitForRoom() -> Bool {
        condition.lock()
        defer { condition.unlock() }
        given += 1
        while !closed && given - takenCount >= ahead { condition.wait() }
        return !closed
    }

    func taken() {
        condition.lock()
        takenCount += 1
        condition.signal()
        condition.unlock()
    }

    func close() {
        condition.lock()
        closed = true
        condition.signal()
        condition.unlock()
    }
}
