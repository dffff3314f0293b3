import Mustache

/// The console's pages: Mustache templates (every `{{value}}` HTML-escaped), each filling the layout's
/// `body`. No scripts: filters and paging are links and GET forms, actions are POST forms carrying the
/// session's token, and a page that shows work under way refreshes itself.
enum ConsoleTemplates {
    static let library: MustacheLibrary = {
        MustacheContentTypes.register(ScalarHTML(), named: "CONSOLE_HTML")
        var library = MustacheLibrary()
        for (name, text) in templates {
            do { try library.register("{{% CONTENT_TYPE: CONSOLE_HTML}}" + text, named: name) } catch {
                fatalError("console template \(name): \(error)")
            }
        }
        return library
    }()

    static let templates: [String: String] = [
        "layout": layout, "sign-in": signIn, "operations": operations, "operation": operation, "connections": connections,
        "installations": installations, "integrations": integrations, "error": error,
    ]

    static let layout = #"""
        <!doctype html>
        <html lang="en">
        <head>
        <meta charset="utf-8">
        <meta name="viewport" content="width=device-width, initial-scale=1">
        {{#refresh}}<meta http-equiv="refresh" content="{{refresh}}">{{/refresh}}
        <title>{{title}} · Writeback</title>
        <style>
        :root { --fg: #1d2330; --muted: #5f6b7a; --line: #dfe3e8; --bg: #f6f7f9; --accent: #2f5bd3;
                --ok: #1f7a3d; --bad: #b42318; --busy: #9a6700; }
        * { box-sizing: border-box; }
        body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: var(--fg); background: var(--bg); }
        header { background: #fff; border-bottom: 1px solid var(--line); }
        nav { display: flex; gap: 1.2rem; align-items: center; max-width: 1200px; margin: 0 auto; padding: .7rem 1rem; }
        nav .brand { font-weight: 700; } nav .project { color: var(--muted); }
        nav a { color: var(--fg); text-decoration: none; } nav a[aria-current] { color: var(--accent); font-weight: 600; }
        nav form { margin-left: auto; }
        main { max-width: 1200px; margin: 0 auto; padding: 1rem; }
        h1 { font-size: 1.35rem; margin: .4rem 0 1rem; } h2 { font-size: 1.05rem; margin: 1.4rem 0 .5rem; }
        table { width: 100%; border-collapse: collapse; background: #fff; border: 1px solid var(--line); }
        th, td { text-align: left; padding: .4rem .6rem; border-bottom: 1px solid var(--line); vertical-align: top; }
        th { font-weight: 600; color: var(--muted); background: #fbfbfc; white-space: nowrap; }
        #operations td { white-space: nowrap; } #operations td.result { white-space: normal; }
        td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
        code, pre { font: 12.5px/1.4 ui-monospace, SFMono-Regular, Menlo, monospace; }
        pre { background: #fff; border: 1px solid var(--line); padding: .7rem; overflow: auto; max-height: 28rem; }
        a { color: var(--accent); }
        .status { font-weight: 600; } .success { color: var(--ok); } .failure { color: var(--bad); } .in_progress { color: var(--busy); }
        .muted { color: var(--muted); } .error { color: var(--bad); }
        .filters { display: flex; flex-wrap: wrap; gap: .6rem; align-items: end; background: #fff; border: 1px solid var(--line);
                   padding: .7rem; margin-bottom: .8rem; }
        .filters label { display: flex; flex-direction: column; font-size: 12px; color: var(--muted); gap: .2rem; }
        input, select, button { font: inherit; padding: .3rem .45rem; border: 1px solid #c7ccd4; border-radius: 4px; background: #fff; }
        button { cursor: pointer; background: var(--accent); color: #fff; border-color: var(--accent); }
        button.plain { background: #fff; color: var(--fg); border-color: #c7ccd4; }
        .pager { display: flex; gap: 1rem; margin: .8rem 0; }
        dl { display: grid; grid-template-columns: max-content 1fr; gap: .3rem 1rem; background: #fff; border: 1px solid var(--line); padding: .8rem; margin: 0; }
        dt { color: var(--muted); } dd { margin: 0; }
        .bar { height: 10px; background: var(--line); border-radius: 5px; overflow: hidden; width: 320px; display: inline-block; vertical-align: middle; }
        .bar span { display: block; height: 100%; background: var(--accent); }
        .card { max-width: 420px; margin: 4rem auto; background: #fff; border: 1px solid var(--line); padding: 1.4rem; }
        .card label { display: block; margin: .8rem 0 .3rem; } .card input { width: 100%; }
        .notice { background: #fff4e5; border: 1px solid #f2c58c; padding: .6rem .8rem; margin-bottom: .8rem; }
        svg text { font: 10px system-ui, sans-serif; fill: var(--muted); }
        </style>
        </head>
        <body>
        {{#project}}
        <header><nav>
        <span class="brand">Writeback</span><span class="project" id="project">{{project}}</span>
        <a href="/console/operations"{{#navOperations}} aria-current="page"{{/navOperations}}>Operations</a>
        <a href="/console/operations?status=dead_lettered"{{#navDeadLetters}} aria-current="page"{{/navDeadLetters}}>Dead letters</a>
        <a href="/console/connections"{{#navConnections}} aria-current="page"{{/navConnections}}>Connections</a>
        <a href="/console/installations"{{#navInstallations}} aria-current="page"{{/navInstallations}}>Installations</a>
        <a href="/console/integrations"{{#navIntegrations}} aria-current="page"{{/navIntegrations}}>Integrations</a>
        <form method="post" action="/console/sign-out"><input type="hidden" name="csrf" value="{{csrf}}"><button class="plain" id="sign-out">Sign out</button></form>
        </nav></header>
        {{/project}}
        <main>
        {{$body}}{{/body}}
        </main>
        </body>
        </html>
        """#

    static let signIn = #"""
        {{<layout}}{{$body}}
        <form class="card" method="post" action="/console/sign-in">
        <h1>Sign in to Writeback</h1>
        <p class="muted">With one of your project's API keys. The console keeps it in a cookie of this browser, sealed, for 12 hours.</p>
        {{#message}}<p class="error" id="sign-in-error">{{message}}</p>{{/message}}
        <label for="key">API key</label>
        <input id="key" name="key" type="password" autocomplete="off" required autofocus>
        <p><button id="sign-in" type="submit">Sign in</button></p>
        </form>
        {{/body}}{{/layout}}
        """#

    static let operations = #"""
        {{<layout}}{{$body}}
        <h1>{{heading}}</h1>
        <form class="filters" method="get" action="/console/operations">
        <label>Integration<select name="integration" id="filter-integration"><option value="">any</option>
        {{#integrations}}<option value="{{name}}"{{#selected}} selected{{/selected}}>{{name}}</option>{{/integrations}}</select></label>
        <label>groupRef<input name="groupRef" id="filter-groupRef" value="{{filters.groupRef}}" size="14"></label>
        <label>Status<select name="status" id="filter-status">
        {{#statuses}}<option value="{{value}}"{{#selected}} selected{{/selected}}>{{label}}</option>{{/statuses}}</select></label>
        <label>Type<select name="type" id="filter-type">
        {{#types}}<option value="{{value}}"{{#selected}} selected{{/selected}}>{{label}}</option>{{/types}}</select></label>
        <label>From (UTC)<input type="datetime-local" name="from" id="filter-from" value="{{filters.from}}" step="1"></label>
        <label>To (UTC)<input type="datetime-local" name="to" id="filter-to" value="{{filters.to}}" step="1"></label>
        <label>Per page<select name="limit">{{#limits}}<option{{#selected}} selected{{/selected}}>{{value}}</option>{{/limits}}</select></label>
        <button type="submit" id="apply-filters">Show</button> <a href="/console/operations">clear</a>
        </form>
        {{^rows}}<p class="muted" id="no-operations">No operations match.</p>{{/rows}}
        {{#hasRows}}
        <table id="operations">
        <thead><tr><th>Created (UTC)</th><th>Status</th><th>Write</th><th>Integration</th><th>groupRef</th><th>Result</th><th>Operation</th></tr></thead>
        <tbody>
        {{/hasRows}}
        {{#rows}}
        <tr data-operation="{{id}}" data-status="{{status}}">
        <td>{{created}}</td><td class="status {{status}}">{{statusLabel}}</td><td>{{writeType}} {{objectName}} <span class="muted">{{mode}}</span></td>
        <td>{{integration}}</td><td>{{groupRef}}</td><td class="result">{{#error}}<span class="error">{{error}}</span>{{/error}}{{^error}}{{summary}}{{/error}}</td>
        <td><a href="/console/operations/{{id}}">{{shortId}}</a></td>
        </tr>
        {{/rows}}
        {{#hasRows}}</tbody></table>{{/hasRows}}
        <div class="pager">{{#newest}}<a href="{{newest}}" id="newest">Newest</a>{{/newest}}{{#older}}<a href="{{older}}" id="older">Older →</a>{{/older}}</div>
        {{/body}}{{/layout}}
        """#

    static let operation = #"""
        {{<layout}}{{$body}}
        <h1>Operation <code>{{id}}</code></h1>
        {{#resentAs}}<p class="notice">Sent again as <a href="/console/operations/{{resentAs}}" id="resent-as">{{resentAs}}</a>.</p>{{/resentAs}}
        <dl id="operation">
        <dt>Status</dt><dd class="status {{status}}" id="status">{{statusLabel}}</dd>
        <dt>Result</dt><dd id="result">{{summary}}</dd>
        {{#errors}}<dt>Error</dt><dd class="error" data-error>{{message}}{{#code}} <span class="muted">({{code}})</span>{{/code}}{{#deadLettered}} <strong>dead-lettered</strong>{{/deadLettered}}</dd>{{/errors}}
        <dt>Write</dt><dd>{{writeType}} of {{objectName}} ({{mode}})</dd>
        <dt>Integration</dt><dd><a href="/console/operations?integration={{integration}}">{{integration}}</a></dd>
        <dt>groupRef</dt><dd><a href="/console/operations?groupRef={{groupRefQuery}}">{{groupRef}}</a></dd>
        <dt>Installation</dt><dd><code>{{installationId}}</code></dd>
        {{#recordId}}<dt>Record</dt><dd><code>{{recordId}}</code></dd>{{/recordId}}
        {{#providerStatus}}<dt>Provider status</dt><dd>{{providerStatus}}</dd>{{/providerStatus}}
        <dt>Attempts</dt><dd>{{attempts}}</dd>
        <dt>Created</dt><dd>{{created}} UTC</dd>
        <dt>Updated</dt><dd>{{updated}} UTC</dd>
        {{#resentFrom}}<dt>Sends again</dt><dd><a href="/console/operations/{{resentFrom}}" id="resent-from">{{resentFrom}}</a></dd>{{/resentFrom}}
        </dl>
        {{#canResend}}
        <form method="post" action="/console/operations/{{id}}/resend">
        <input type="hidden" name="csrf" value="{{csrf}}">
        {{#possiblyDuplicated}}<p class="notice">A call of this write ended without saying whether the provider applied it:
        it may be there already, and sending it again may write it twice.
        <label><input type="checkbox" name="confirm" value="duplicate" id="confirm-duplicate" required> I checked the provider</label></p>{{/possiblyDuplicated}}
        <p><button type="submit" id="resend">Send again</button> <span class="muted">The same request, as a new operation linked to this one.</span></p>
        </form>
        {{/canResend}}
        {{#progress}}
        <h2>Bulk progress</h2>
        <p id="progress" data-processed="{{processed}}" data-total="{{total}}">
        <span class="bar"><span style="width: {{percent}}%"></span></span>
        {{processed}} of {{totalLabel}} rows read · {{succeeded}} written · {{failed}} failed
        </p>
        {{#hasFailedRows}}
        <h2>Failed rows</h2>
        <table id="failed-rows"><thead><tr><th class="num">Line</th><th>Error</th><th>Row</th></tr></thead><tbody>
        {{/hasFailedRows}}
        {{#failedRows}}<tr><td class="num">{{line}}</td><td class="error">{{error}}</td><td><code>{{row}}</code></td></tr>{{/failedRows}}
        {{#hasFailedRows}}</tbody></table>
        <p><a href="/console/operations/{{id}}/failed-records" id="failed-records">All failed rows as CSV</a></p>{{/hasFailedRows}}
        {{/progress}}
        <h2>Request</h2>
        {{#request}}<pre id="request">{{request}}</pre>{{/request}}
        {{^request}}<p class="muted">This operation's request was not kept.</p>{{/request}}
        <h2>Result</h2>
        <pre id="operation-json">{{json}}</pre>
        <h2>Logs</h2>
        <table id="logs"><thead><tr><th>Time (UTC)</th><th>Severity</th><th>Message</th></tr></thead><tbody>
        {{#logs}}<tr><td>{{time}}</td><td>{{severity}}</td><td>{{message}}{{#details}} <code class="muted">{{details}}</code>{{/details}}</td></tr>{{/logs}}
        </tbody></table>
        {{#moreLogs}}<p class="muted">The first {{moreLogs}} lines; every line: <code>GET …/operations/{{id}}/logs</code>.</p>{{/moreLogs}}
        {{/body}}{{/layout}}
        """#

    static let connections = #"""
        {{<layout}}{{$body}}
        <h1>Connections</h1>
        <p class="muted">Each customer's account at a provider. Health is the connection's state and how its writes went in the last hour.</p>
        <table id="connections">
        <thead><tr><th>Provider</th><th>groupRef</th><th>Consumer</th><th>Health</th><th class="num">Writes (1 h)</th><th class="num">Failed</th><th>Last failure</th><th>Updated (UTC)</th><th>Id</th></tr></thead>
        <tbody>
        {{#rows}}<tr data-connection="{{id}}"><td>{{provider}}</td><td>{{groupRef}}</td><td>{{consumer}}</td>
        <td class="status {{healthClass}}">{{health}}</td><td class="num">{{writes}}</td><td class="num">{{failed}}</td>
        <td class="error">{{lastError}}</td><td>{{updated}}</td><td><code>{{id}}</code></td></tr>{{/rows}}
        </tbody></table>
        {{^rows}}<p class="muted">No connections yet.</p>{{/rows}}
        {{/body}}{{/layout}}
        """#

    static let installations = #"""
        {{<layout}}{{$body}}
        <h1>Installations</h1>
        <p class="muted">Writes of the last hour per installation, by when they were accepted: how many, how they ended, and how long they took to end (p50 and p99).
        The chart shows writes per minute (bars) and the minute's p99 (line).</p>
        <table id="installations">
        <thead><tr><th>Integration</th><th>groupRef</th><th class="num">Writes</th><th class="num">Succeeded</th><th class="num">Failed</th><th class="num">Running</th>
        <th class="num">p50</th><th class="num">p99</th><th>Last hour</th><th>Id</th></tr></thead>
        <tbody>
        {{#rows}}<tr data-installation="{{id}}"><td><a href="/console/operations?integration={{integration}}&amp;groupRef={{groupRefQuery}}">{{integration}}</a></td><td>{{groupRef}}</td>
        <td class="num" data-count="total">{{total}}</td><td class="num">{{succeeded}}</td><td class="num">{{failed}}</td><td class="num">{{running}}</td>
        <td class="num" data-latency="p50">{{p50}}</td><td class="num" data-latency="p99">{{p99}}</td><td>{{{chart}}}</td><td><code>{{id}}</code></td></tr>{{/rows}}
        </tbody></table>
        {{^rows}}<p class="muted">No installations yet.</p>{{/rows}}
        {{/body}}{{/layout}}
        """#

    static let integrations = #"""
        {{<layout}}{{$body}}
        <h1>Integrations</h1>
        {{#rows}}
        <section data-integration="{{name}}">
        <h2>{{name}} <span class="muted">{{provider}}{{#displayName}} · {{displayName}}{{/displayName}}</span></h2>
        <dl><dt>Objects</dt><dd>{{objects}}</dd><dt>Installations</dt><dd>{{installations}}</dd><dt>Updated</dt><dd>{{updated}} UTC</dd></dl>
        <table class="revisions"><thead><tr><th>Revision</th><th>Spec version</th><th>Deployed (UTC)</th><th></th></tr></thead><tbody>
        {{#revisions}}<tr><td><code>{{id}}</code></td><td>{{specVersion}}</td><td>{{created}}</td><td>{{#latest}}<strong>current</strong>{{/latest}}</td></tr>{{/revisions}}
        </tbody></table>
        </section>
        {{/rows}}
        {{^rows}}<p class="muted">No integrations deployed yet: <code>writeback deploy amp.yaml</code>.</p>{{/rows}}
        {{/body}}{{/layout}}
        """#

    static let error = #"""
        {{<layout}}{{$body}}
        <h1>{{heading}}</h1>
        <p id="error-detail">{{detail}}</p>
        <p><a href="/console/operations">Operations</a></p>
        {{/body}}{{/layout}}
        """#
}

/// HTML escaping by Unicode scalar: a quote followed by a combining mark is one `Character` that is not a
/// quote, and escaping by `Character` (the library's own HTML) would pass it, ending an attribute.
struct ScalarHTML: MustacheContentType {
    func escapeText(_ text: String) -> String {
        var escaped = String.UnicodeScalarView()
        for scalar in text.unicodeScalars {
            switch scalar {
            case "<": escaped.append(contentsOf: "&lt;".unicodeScalars)
            case ">": escaped.append(contentsOf: "&gt;".unicodeScalars)
            case "&": escaped.append(contentsOf: "&amp;".unicodeScalars)
            case "\"": escaped.append(contentsOf: "&quot;".unicodeScalars)
            case "'": escaped.append(contentsOf: "&#39;".unicodeScalars)
            default: escaped.append(scalar)
            }
        }
        return String(escaped)
    }
}
