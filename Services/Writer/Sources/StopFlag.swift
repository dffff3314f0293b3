import Synchronization

/// Asks a long write (a bulk file) to stop at its next step: at shutdown, or when its partition is
/// taken away. What stopped is left uncommitted and comes back.
final class StopFlag: Sendable {
    private let flag = Atomic<Bool>(false)

    var isSet: Bool { flag.load(ordering: .relaxed) }

    func set() { flag.store(true, ordering: .relaxed) }
}
