import Foundation
import Synchronization

/// Random bytes from the kernel's generator (`/dev/urandom`), read 4 KiB at a time and handed out in
/// order, each byte once: as unpredictable as `UUID()`'s, without its system call per id. (A forked child
/// would hand out its parent's remaining bytes again; no process here forks.)
public final class RandomBytes: Sendable {
    public static let shared = RandomBytes()

    private struct Pool {
        var bytes = [UInt8](repeating: 0, count: 4096)
        var next = 4096
    }

    private let pool = Mutex(Pool())
    private let device: Int32 = open("/dev/urandom", O_RDONLY | O_CLOEXEC)

    /// Sixteen random bytes, shaped as `UUID`'s.
    public func uuid() -> uuid_t {
        var value: uuid_t = (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        withUnsafeMutableBytes(of: &value) { fill($0) }
        return value
    }

    /// Fills the buffer, from the pool while it lasts.
    public func fill(_ buffer: UnsafeMutableRawBufferPointer) {
        pool.withLock { pool in
            var filled = 0
            while filled < buffer.count {
                if pool.next == pool.bytes.count {
                    guard refill(&pool.bytes) else {
                        // No device to read (a bare chroot): the standard library's generator.
                        var generator = SystemRandomNumberGenerator()
                        for index in filled..<buffer.count { buffer[index] = generator.next() }
                        return
                    }
                    pool.next = 0
                }
                let taken = min(buffer.count - filled, pool.bytes.count - pool.next)
                pool.bytes.withUnsafeBytes { source in
                    buffer.baseAddress!.advanced(by: filled)
                        .copyMemory(from: source.baseAddress!.advanced(by: pool.next), byteCount: taken)
                }
                pool.next += taken
                filled += taken
            }
        }
    }

    private func refill(_ bytes: inout [UInt8]) -> Bool {
        guard device >= 0 else { return false }
        var done = 0
        while done < bytes.count {
            let got = bytes.withUnsafeMutableBytes { read(device, $0.baseAddress!.advanced(by: done), $0.count - done) }
            if got < 0 && errno == EINTR { continue }
            guard got > 0 else { return false }
            done += got
        }
        return true
    }

    /// `uuid` as text, lowercase with its dashes, as `UUID(uuid:).uuidString.lowercased()` writes it.
    public static func lowercaseText(_ uuid: uuid_t) -> String {
        withUnsafeBytes(of: uuid) { bytes in
            String(unsafeUninitializedCapacity: 36) { text in
                let digits: StaticString = "0123456789abcdef"
                var at = 0
                for (index, byte) in bytes.enumerated() {
                    if index == 4 || index == 6 || index == 8 || index == 10 { text[at] = UInt8(ascii: "-"); at += 1 }
                    text[at] = digits.utf8Start[Int(byte >> 4)]
                    text[at + 1] = digits.utf8Start[Int(byte & 0x0F)]
                    at += 2
                }
                return at
            }
        }
    }
}
