import Foundation

/// The installations page's chart of the last hour, drawn as inline SVG: a bar per minute for how many
/// writes were accepted in it, and a line through the minutes' p99 latency. Oldest minute on the left.
enum ConsoleChart {
    struct Minute: Sendable {
        /// Minutes ago, 0 to 59.
        var ago: Int
        var count: Int
        /// Milliseconds, of the minute's finished writes.
        var p99: Double?
    }

    static let width = 240.0, height = 40.0, minutes = 60

    static func svg(_ data: [Minute]) -> String {
        let slot = width / Double(minutes)
        let maxCount = max(1, data.map(\.count).max() ?? 1)
        let maxP99 = max(1, data.compactMap(\.p99).max() ?? 1)
        func x(_ ago: Int) -> Double { Double(minutes - 1 - ago) * slot }
        var bars = ""
        for minute in data where minute.count > 0 {
            let barHeight = max(1, height * Double(minute.count) / Double(maxCount))
            bars += ##"<rect x="\##(format(x(minute.ago) + 0.5))" y="\##(format(height - barHeight))" width="\##(format(slot - 1))" height="\##(format(barHeight))" fill="#9db4ef"/>"##
        }
        let points = data.filter { $0.p99 != nil }.sorted { $0.ago > $1.ago }.map { minute in
            "\(format(x(minute.ago) + slot / 2)),\(format(height - 1 - (height - 2) * (minute.p99 ?? 0) / maxP99))"
        }
        let line = points.count > 1 ? ##"<polyline points="\##(points.joined(separator: " "))" fill="none" stroke="#b42318" stroke-width="1.2"/>"## : ""
        let total = data.reduce(0) { $0 + $1.count }
        let label = "\(total) writes in the last hour; busiest minute \(data.map(\.count).max() ?? 0); highest p99 \(Int(data.compactMap(\.p99).max() ?? 0)) ms"
        return ##"<svg class="chart" role="img" aria-label="\##(label)" width="\##(Int(width))" height="\##(Int(height))" viewBox="0 0 \##(Int(width)) \##(Int(height))"><title>\##(label)</title><rect width="\##(Int(width))" height="\##(Int(height))" fill="#f6f7f9"/>\##(bars)\##(line)</svg>"##
    }

    private static func format(_ value: Double) -> String { String(format: "%.1f", value) }
}
