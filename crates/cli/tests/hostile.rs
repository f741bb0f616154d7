//! Hostile input, data-driven: every route of `ewf local serve` and every subcommand,
//! given injection strings, traversal, encoded slashes and NULs, unicode, huge ids,
//! every malformed amount, huge and malformed bodies and wrong methods. Each is answered
//! 4xx with a JSON body (HTTP) or a documented exit code with one line (CLI), and the
//! state file is byte-for-byte the same afterwards (every table dumped before and after).

mod common;

use common::{Run, dump, ewf, run, serve};
use ewf_domain::testing::MALFORMED_AMOUNTS;
use serde_json::Value;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// A seeded local stack with one order in delivery and one that failed.
struct Seeded {
    dir: tempfile::TempDir,
    order: String,
}

impl Seeded {
    fn new() -> Self {
        let seeded = Self {
            dir: tempfile::tempdir().unwrap(),
            order: String::new(),
        };
        seeded.run(&["seed"]).expect_success();
        seeded.run(&["set-fail-probability", "0"]).expect_success();
        let created = seeded.run(&[
            "order",
            "create",
            "customer-1",
            "item-1",
            "--mode",
            "events",
            "--output",
            "json",
        ]);
        created.expect_success();
        let order = created.json()["orderId"].as_str().unwrap().to_owned();
        Self { order, ..seeded }
    }

    fn state_dir(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    fn command(&self) -> Command {
        let mut command = ewf(self.dir.path());
        command
            .arg("--local")
            .arg("--state-dir")
            .arg(self.state_dir());
        command
    }

    fn run(&self, args: &[&str]) -> Run {
        run(self.command(), args)
    }

    /// Every row of every table of the state file, in a stable order.
    fn dump(&self) -> Vec<String> {
        dump(&self.state_dir().join(ewf_local::stack::STATE_FILE))
    }
}

/// Hostile values for an id (or address) in a path, percent-encoded as sent.
fn hostile_segments() -> Vec<String> {
    let mut values: Vec<String> = [
        "x'%20OR%20'1'%3D'1",
        "%22%3B%20DROP%20TABLE%20orders%3B%20--",
        "..",
        "..%2F..%2Fetc%2Fpasswd",
        "%2E%2E%2F%2E%2E",
        "a%2Fb",
        "%00",
        "a%00b",
        "%0A",
        "%20",
        "%C3%A9",
        "%F0%9F%92%A5",
        "%FF%FE",
        "-lead",
        "%25",
        "%",
        "%ZZ",
        "%3Cscript%3E",
        "$%7Bjndi%3Aldap%7D",
    ]
    .map(str::to_owned)
    .to_vec();
    values.push("a".repeat(81));
    values.push("a".repeat(10 * 1024));
    values
}

/// The routes, each with `{}` where the hostile value goes; the other parts are valid
/// (so the hostile part is what is refused) but never name something a write could
/// change (item-9 does not exist).
const ROUTES: &[&str] = &[
    "/customer/describe/{}",
    "/order/create/{}/item-9",
    "/order/create/customer-1/{}",
    "/order/describe/customer-1/{}",
    "/order/describe/{}/01KDX8Q7V3M2N4P6R8S0T2W4Y6",
    "/inventory/describe/{}",
    "/inventory/reserve/{}",
    "/inventory/unreserve/{}",
    "/inventory/remove/{}",
    "/inventory/return/{}",
    "/payment/pay/{}",
    "/payment/cancel/{}",
    "/payment/describe/{}",
    "/delivery/start/customer-1/{}/Trafalgar%20Square",
    "/delivery/describe/customer-1/{}",
    "/delivery/cancel/{}/01KDX8Q7V3M2N4P6R8S0T2W4Y6",
    "/delivery/delivered/customer-1/{}",
    "/{}/describe/customer-1",
    "/inventory/{}/item-1",
];

/// A request as raw bytes, with what it must be answered.
struct Case {
    name: String,
    request: Vec<u8>,
    /// Whether the client ends its side after the request (for requests that never
    /// complete a head: the server answers when it sees the end).
    ends: bool,
}

fn get(path: &str) -> Vec<u8> {
    // `Connection: close`, so that a server that keeps connections open is still read
    // to the end of its answer.
    format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n").into_bytes()
}

fn with_body(method: &str, path: &str, body: &[u8]) -> Vec<u8> {
    let mut request = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    request.extend_from_slice(body);
    request
}

fn percent_encoded(text: &str) -> String {
    text.bytes()
        .map(|byte| {
            if byte.is_ascii_alphanumeric() || b".-_".contains(&byte) {
                (byte as char).to_string()
            } else {
                format!("%{byte:02X}")
            }
        })
        .collect()
}

fn http_cases() -> Vec<Case> {
    let mut cases = Vec::new();
    for route in ROUTES {
        for value in hostile_segments() {
            let path = route.replace("{}", &value);
            cases.push(Case {
                name: format!("GET {}", &path[..path.len().min(80)]),
                request: get(&path),
                ends: false,
            });
        }
    }
    for amount in MALFORMED_AMOUNTS {
        let path = format!("/payment/pay/{}", percent_encoded(amount));
        cases.push(Case {
            name: format!("GET {path}"),
            request: get(&path),
            ends: false,
        });
    }
    // Amounts as sent raw, where they are legal in a path.
    for raw in [
        "1.500", "1_000", "1E2", "1e-2", "1.5e1", "+1", ".5", "1.", "0001.50", "%201",
    ] {
        let path = format!("/payment/pay/{raw}");
        cases.push(Case {
            name: format!("GET {path}"),
            request: get(&path),
            ends: false,
        });
    }
    let huge = "a".repeat(1024 * 1024);
    for path in [
        format!("/customer/describe/{huge}"),
        format!("/payment/pay/{huge}"),
    ] {
        cases.push(Case {
            name: "GET a 1 MB segment".into(),
            request: get(&path),
            ends: false,
        });
    }
    for (method, path) in [
        ("POST", "/customer/describe/customer-1"),
        ("PUT", "/inventory/reserve/item-1"),
        (
            "DELETE",
            "/order/describe/customer-1/01KDX8Q7V3M2N4P6R8S0T2W4Y6",
        ),
        ("PATCH", "/payment/pay/10"),
        ("GET", "/order"),
        ("PUT", "/order"),
        ("DELETE", "/order"),
    ] {
        cases.push(Case {
            name: format!("{method} {path}"),
            request: with_body(method, path, b"{}"),
            ends: false,
        });
    }
    let bodies: Vec<Vec<u8>> = vec![
        b"".to_vec(),
        b"not json".to_vec(),
        b"[]".to_vec(),
        b"null".to_vec(),
        b"{\"customerId\": 1, \"itemId\": \"item-1\"}".to_vec(),
        b"{\"customerId\": \"customer-1\"}".to_vec(),
        b"{\"customerId\": \"x' OR 1=1\", \"itemId\": \"item-1\"}".to_vec(),
        b"{\"customerId\": \"customer-1\", \"itemId\": \"../../etc\"}".to_vec(),
        b"{\"customerId\": \"customer-1\", \"itemId\": \"item\\u0000\"}".to_vec(),
        b"{\"customerId\": \"customer-1\", \"itemId\": \"\xff\xfe\"}".to_vec(),
        format!(
            "{{\"customerId\": \"{}\", \"itemId\": \"item-1\"}}",
            "a".repeat(10 * 1024)
        )
        .into_bytes(),
        "[".repeat(10_000).into_bytes(),
        vec![b'x'; 2 * 1024 * 1024],
    ];
    for body in bodies {
        cases.push(Case {
            name: format!(
                "POST /order with {} bytes: {}",
                body.len(),
                String::from_utf8_lossy(&body[..body.len().min(40)])
            ),
            request: with_body("POST", "/order", &body),
            ends: false,
        });
    }
    let raw: &[&[u8]] = &[
        b"GARBAGE\r\n\r\n",
        b"GET /a b c HTTP/1.1\r\n\r\n",
        b"GET /customer/describe/customer-1 HTTP/9.9\r\n\r\n",
        b"GET customer/describe/customer-1 HTTP/1.1\r\nHost: x\r\n\r\n",
        b"G\x00T / HTTP/1.1\r\n\r\n",
        b"GET /customer/describe/customer-1 HTTP/1.1\r\nBad Header\r\n\r\n",
        b"GET /customer/describe/customer-1 HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n",
        b"GET /customer/describe/customer-1 HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
        b"POST /order HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
        b"POST /order HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999\r\n\r\n",
        b"\r\n\r\n",
    ];
    for request in raw {
        cases.push(Case {
            name: format!(
                "raw {:?}",
                String::from_utf8_lossy(&request[..request.len().min(40)])
            ),
            request: request.to_vec(),
            ends: true,
        });
    }
    let many_headers: String = (0..2000).map(|n| format!("X-H{n}: {n}\r\n")).collect();
    cases.push(Case {
        name: "2000 headers".into(),
        request: format!(
            "GET /customer/describe/customer-1 HTTP/1.1\r\nHost: x\r\n{many_headers}\r\n"
        )
        .into_bytes(),
        ends: false,
    });
    cases
}

/// Sends one request on a connection of its own; the status and the body.
fn send(address: &str, request: &[u8], ends: bool) -> (u16, String, String) {
    let mut stream = TcpStream::connect(address).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    // The server may answer (and close) before it has read all of a huge request.
    let _ = stream.write_all(request);
    if ends {
        let _ = stream.shutdown(std::net::Shutdown::Write);
    }
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    let answer = String::from_utf8_lossy(&answer).into_owned();
    let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or(0);
    (status, head.to_lowercase(), body.to_owned())
}

#[test]
fn hostile_http_requests_are_refused_with_json_and_change_nothing() {
    let seeded = Seeded::new();
    let before = seeded.dump();
    let (mut server, address) = serve(&mut seeded.command());
    let cases = http_cases();
    assert!(cases.len() >= 120, "{} cases", cases.len());
    let mut failures = Vec::new();
    for case in &cases {
        let (status, head, body) = send(&address, &case.request, case.ends);
        let json: Option<Value> = serde_json::from_str(&body).ok();
        let well_formed = json
            .as_ref()
            .is_some_and(|json| json["error"].is_string() && json["message"].is_string());
        if !(400..500).contains(&status)
            || !head.contains("content-type: application/json")
            || !well_formed
        {
            failures.push(format!("{}: {status} {body:.200}", case.name));
        }
    }
    assert!(
        server.try_wait().unwrap().is_none(),
        "the server died during the cases"
    );
    server.kill().unwrap();
    server.wait().unwrap();
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
    assert_eq!(seeded.dump(), before, "the state changed");
}

/// A command line, and the exit code it must end with.
fn cli_cases(order: &str, data_dirs: &[(String, PathBuf)]) -> Vec<(Vec<String>, i32)> {
    let mut cases: Vec<(Vec<String>, i32)> = Vec::new();
    let mut ids: Vec<String> = [
        "x' OR '1'='1",
        "\"; DROP TABLE orders; --",
        "..",
        "../../etc/passwd",
        "a/b",
        "a%2Fb",
        "é",
        "💥",
        "-lead",
        " ",
        "",
        "a\nb",
        "$(touch pwned)",
    ]
    .map(str::to_owned)
    .to_vec();
    ids.push("a".repeat(81));
    ids.push("a".repeat(100 * 1024));
    let args = |parts: &[&str]| {
        parts
            .iter()
            .map(|part| (*part).to_owned())
            .collect::<Vec<_>>()
    };
    for id in &ids {
        // `-lead` reads as an option unless after `--`.
        let id = id.as_str();
        for command in [
            args(&["order", "describe", "customer-1", "--", id]),
            args(&["order", "describe", "--", id, order]),
            args(&["order", "create", "--mode", "events", "--", id, "item-1"]),
            args(&[
                "order",
                "create",
                "--mode",
                "workflow",
                "--",
                "customer-1",
                id,
            ]),
            args(&["deliver", "customer-1", "--", id]),
            args(&["cancel", "--", id, order]),
            args(&["events", "--order", id]),
            args(&["dead-letters", "--order", id]),
            args(&["dead-letters", "redrive", "--order", id]),
        ] {
            cases.push((command, 2));
        }
    }
    for probability in ["-1", "1.5", "NaN", "inf", "1e400", "abc", "", "0x1", " 0.5"] {
        cases.push((args(&["set-fail-probability", "--", probability]), 2));
    }
    for bad in [
        args(&["order", "create", "customer-1", "item-1", "--mode", "both"]),
        args(&[
            "order",
            "create",
            "customer-1",
            "item-1",
            "--mode",
            "events",
            "--expect",
            "LOST",
        ]),
        args(&[
            "order",
            "create",
            "customer-1",
            "item-1",
            "--mode",
            "events",
            "--timeout",
            "-1",
        ]),
        args(&[
            "order",
            "create",
            "customer-1",
            "item-1",
            "--mode",
            "events",
            "--timeout",
            "1e9",
        ]),
        args(&["deliver", "customer-1", order, "--timeout", "soon"]),
        args(&["events", "--order", order, "--output", "xml"]),
        args(&["local", "serve", "--port", "99999"]),
        args(&["bench", "--orders", "-5"]),
        args(&["bench", "--mode", "neither"]),
        args(&["completions", "nosh"]),
        args(&["dead-letters", "redrive"]),
        args(&["nonsense"]),
        args(&["order"]),
    ] {
        cases.push((bad, 2));
    }
    // Well-formed ids of nothing: not found.
    for missing in [
        args(&[
            "order",
            "describe",
            "customer-1",
            "01KDX8Q7V3M2N4P6R8S0T2W4Y6",
        ]),
        args(&["order", "describe", "customer-2", order]),
        args(&["deliver", "customer-1", "01KDX8Q7V3M2N4P6R8S0T2W4Y6"]),
        args(&["cancel", "customer-3", order]),
        args(&["events", "--order", "01KDX8Q7V3M2N4P6R8S0T2W4Y6"]),
    ] {
        cases.push((missing, 3));
    }
    for (_, dir) in data_dirs {
        cases.push((
            vec!["seed".into(), "--data".into(), dir.display().to_string()],
            2,
        ));
    }
    cases.push((args(&["seed", "--data", "/nonexistent/dir"]), 2));
    cases
}

/// Data directories whose items.json has a malformed price, one each.
fn bad_data_dirs(root: &Path) -> Vec<(String, PathBuf)> {
    MALFORMED_AMOUNTS
        .iter()
        .enumerate()
        .map(|(index, price)| {
            let dir = root.join(format!("data-{index}"));
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(dir.join("customers.json"), "[]").unwrap();
            let items = serde_json::json!([{
                "itemId": "item-1", "name": "Phone", "price": price, "available": 99, "reserved": 0
            }]);
            std::fs::write(dir.join("items.json"), items.to_string()).unwrap();
            ((*price).to_owned(), dir)
        })
        .collect()
}

#[test]
fn hostile_command_lines_end_with_their_exit_code_and_one_line_and_change_nothing() {
    let seeded = Seeded::new();
    let data = tempfile::tempdir().unwrap();
    let cases = cli_cases(&seeded.order, &bad_data_dirs(data.path()));
    assert!(cases.len() >= 120, "{} cases", cases.len());
    let before = seeded.dump();
    let mut failures = Vec::new();
    for (args, code) in &cases {
        let mut command = seeded.command();
        let outcome = common::finish(command.args(args).output().unwrap());
        let lines = outcome.stderr.trim_end().lines().count();
        if outcome.code != *code || lines != 1 || !outcome.stdout.is_empty() {
            let shown: Vec<String> = args.iter().map(|arg| format!("{:.40}", arg)).collect();
            failures.push(format!(
                "{shown:?}: exit {} (expected {code}), stderr {:.300}",
                outcome.code, outcome.stderr
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
    assert_eq!(seeded.dump(), before, "the state changed");
}
