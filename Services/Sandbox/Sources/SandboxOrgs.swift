import Foundation

/// How many calls an org may make: a short window (HubSpot's "ten-secondly rolling" limit) and a longer
/// budget (HubSpot's daily limit; Salesforce's rolling 24-hour API request allocation). Calls past a
/// limit are refused and do not count.
public struct OrgLimits: Codable, Sendable, Equatable {
    /// Calls per short window; nil: no short window.
    public var windowMax: Int?
    public var windowMilliseconds: Int
    /// Calls per long window; nil: unlimited.
    public var dailyMax: Int?
    /// The long window's length in seconds (86,400: a day).
    public var dailyWindowSeconds: Double

    public init(windowMax: Int? = nil, windowMilliseconds: Int = 10_000, dailyMax: Int? = nil, dailyWindowSeconds: Double = 86_400) {
        self.windowMax = windowMax
        self.windowMilliseconds = windowMilliseconds
        self.dailyMax = dailyMax
        self.dailyWindowSeconds = dailyWindowSeconds
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        windowMax = try container.decodeIfPresent(Int.self, forKey: .windowMax)
        windowMilliseconds = try container.decodeIfPresent(Int.self, forKey: .windowMilliseconds) ?? 10_000
        dailyMax = try container.decodeIfPresent(Int.self, forKey: .dailyMax)
        dailyWindowSeconds = try container.decodeIfPresent(Double.self, forKey: .dailyWindowSeconds) ?? 86_400
    }

    /// HubSpot Professional: 190 calls per 10 s, 625,000 a day.
    public static let hubspot = OrgLimits(windowMax: 190, dailyMax: 625_000)
    /// A Salesforce org with a large allocation and no short window.
    public static let salesforce = OrgLimits(dailyMax: 1_000_000)
    /// Pipedrive's burst limit of 80 calls per rolling 2 s, and 10,000 a day.
    public static let pipedrive = OrgLimits(windowMax: 80, windowMilliseconds: 2000, dailyMax: 10_000)
}

/// Counts events in a sliding window with one-second buckets, so a day of calls costs little memory.
struct RollingCounter: Sendable {
    private var buckets: [(second: Int, count: Int)] = []
    private var head = 0
    private(set) var total = 0

    mutating func count(now: Double, window: Double) -> Int {
        let oldest = Int((now - window).rounded(.up))
        while head < buckets.count, buckets[head].second < oldest {
            total -= buckets[head].count
            head += 1
        }
        if head > 1024 {
            buckets.removeFirst(head)
            head = 0
        }
        return total
    }

    mutating func add(now: Double) {
        let second = Int(now)
        if head < buckets.count, buckets[buckets.count - 1].second == second {
            buckets[buckets.count - 1].count += 1
        } else {
            buckets.append((second, 1))
        }
        total += 1
    }
}

/// A simulated Salesforce org or HubSpot account: its limits and what it used of them, its latency and
/// the faults its next calls meet.
struct Org: Sendable {
    var limits: OrgLimits
    /// Overrides the sandbox-wide latency when set.
    var latencyMilliseconds: Int?
    /// Times of the calls counted in the short window (at most `windowMax`).
    var recent: [Double] = []
    var daily = RollingCounter()
    var calls = 0
    /// Calls refused for a limit.
    var limited = 0
    /// A Salesforce org's declared custom objects and fields; nil: any `__c` name is accepted.
    var salesforceObjects: [String: SandboxSchema.DeclaredObject]?

    init(limits: OrgLimits) { self.limits = limits }

    /// What counting one more call at `now` comes to.
    enum Admission: Equatable {
        case admitted
        case overWindow
        case overDaily
    }

    mutating func admit(now: Double) -> Admission {
        let usedToday = daily.count(now: now, window: limits.dailyWindowSeconds)
        if let dailyMax = limits.dailyMax, usedToday >= dailyMax {
            limited += 1
            return .overDaily
        }
        if let windowMax = limits.windowMax {
            let start = now - Double(limits.windowMilliseconds) / 1000
            recent.removeAll { $0 <= start }
            if recent.count >= windowMax {
                limited += 1
                return .overWindow
            }
            recent.append(now)
        }
        daily.add(now: now)
        calls += 1
        return .admitted
    }

    /// Calls left in the short window and the long one, as of the last `admit`.
    var windowRemaining: Int { max(0, (limits.windowMax ?? 0) - recent.count) }
    var dailyUsed: Int { daily.total }
    var dailyRemaining: Int { max(0, (limits.dailyMax ?? Int.max) - daily.total) }
}

/// What tests read at `GET /_sandbox/orgs/{provider}/{org}`.
struct OrgReport: Encodable {
    var provider: String
    var org: String
    var limits: OrgLimits
    var latencyMilliseconds: Int?
    var objects: [String: SandboxSchema.DeclaredObject]?
    /// Calls counted against the limits, and calls refused for a limit.
    var calls: Int
    var limited: Int
    var faultsQueued: Int
}

/// What tests send to `PUT /_sandbox/orgs/{provider}/{org}`: the fields given replace the org's.
struct OrgSettings: Decodable {
    var limits: OrgLimits?
    var latencyMilliseconds: Int?
    /// Salesforce: the org's custom objects and fields, e.g. `{"Contact": {"fields": ["Warmth__c"]},
    /// "Touchpoint__c": {"fields": ["Channel__c"], "required": ["Channel__c"], "externalIds": ["Touch_Id__c"]}}`.
    var objects: [String: SandboxSchema.DeclaredObject]?
}
