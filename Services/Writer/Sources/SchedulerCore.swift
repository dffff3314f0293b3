import Kafka
import Logging
import Metrics
import Pipeline
import ServiceLifecycle
import Shared
import Synchronization

/// The writer's schedule behind a lock, the jobs it asks for, and the consumer's rebalances.
final class SchedulerCore: KafkaRebalanceListener, Sendable {
    enum Job: Sendable {
        case run(ScheduledEntry)
        /// Writes of messages to hold from their arrival, stored together.
        case hold([ScheduledEntry])
        case deadLetter(KafkaMessage, reason: String)
        case loadPartition(TopicPartition, generation: Int)
    }

    let state: Mutex<Schedule>
    let consumer: KafkaConsumer
    let jobs: AsyncStream<Job>
    private let continuation: AsyncStream<Job>.Continuation
    /// Wakes the loader of held writes.
    let wake = WakeSignal()

    init(settings: Schedule.Settings, consumer: KafkaConsumer) {
        state = Mutex(Schedule(settings: settings))
        self.consumer = consumer
        (jobs, continuation) = AsyncStream.makeStream(of: Job.self)
    }

    var isStopping: Bool { state.withLock { $0.stopping } }

    /// Changes the schedule and does what it answers.
    func update(_ change: (inout sending Schedule) -> sending [Schedule.Action]) {
        let (actions, wakeLoader) = state.withLock { schedule -> ([Schedule.Action], Bool) in
            let actions = change(&schedule)
            return (actions, schedule.takeLoaderNeeded())
        }
        apply(actions)
        if wakeLoader { wake.notify() }
    }

    func submit(_ job: Job) {
        continuation.yield(job)
    }

    private func apply(_ actions: [Schedule.Action]) {
        var holds: [ScheduledEntry] = []
        for action in actions {
            switch action {
            case .run(let entry): continuation.yield(.run(entry))
            case .hold(let entry): holds.append(entry)
            case .release(let messages): messages.forEach(consumer.skipped)
            }
        }
        if !holds.isEmpty { continuation.yield(.hold(holds)) }
    }

    /// Begins nothing more; what waited in memory is let go.
    func stop() {
        update { $0.stop() }
        continuation.finish()
        wake.notify()
    }

    func assigned(_ partitions: [(partition: TopicPartition, committed: Int64)]) {
        let generations = state.withLock { $0.assigned(partitions) }
        for (partition, generation) in generations { continuation.yield(.loadPartition(partition, generation: generation)) }
    }

    func revoking(_ partitions: [TopicPartition]) {
        update { $0.revoking(partitions) }
    }

    func revoked(_ partitions: [TopicPartition]) {
        update { $0.revoked(partitions); return [] }
    }
}
