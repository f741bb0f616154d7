//! The local stack's state file when something is wrong with it: truncated, overwritten,
//! not writable, locked by another process, a directory in its place, changed under a
//! running server. Each ends with its documented exit code and one line naming the
//! file, never with a signal, and never waits past the command's --timeout.

mod common;

use common::{Run, ewf, run, serve};
use std::io::{Read, Seek, SeekFrom, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

struct State {
    dir: tempfile::TempDir,
}

impl State {
    /// A seeded state directory.
    fn seeded() -> Self {
        let state = Self {
            dir: tempfile::tempdir().unwrap(),
        };
        state.run(&["seed"]).expect_success();
        state
    }

    fn file(&self) -> PathBuf {
        self.dir
            .path()
            .join("state")
            .join(ewf_local::stack::STATE_FILE)
    }

    fn command(&self) -> Command {
        let mut command = ewf(self.dir.path());
        command
            .arg("--local")
            .arg("--state-dir")
            .arg(self.dir.path().join("state"));
        command
    }

    fn run(&self, args: &[&str]) -> Run {
        run(self.command(), args)
    }
}

/// Commands that read or write the state, each of which must notice a damaged file.
const COMMANDS: &[&[&str]] = &[
    &["seed"],
    &[
        "order",
        "describe",
        "customer-1",
        "01KDX8Q7V3M2N4P6R8S0T2W4Y6",
    ],
    &[
        "order",
        "create",
        "customer-1",
        "item-1",
        "--mode",
        "events",
    ],
    &["deliver", "customer-1", "01KDX8Q7V3M2N4P6R8S0T2W4Y6"],
    &["events", "--order", "01KDX8Q7V3M2N4P6R8S0T2W4Y6"],
    &["dead-letters"],
    &["set-fail-probability", "0"],
    &["stack"],
];

fn expect_every_command(state: &State, code: i32, says: &str) {
    for args in COMMANDS {
        let failed = state.run(args);
        let line = failed.expect_error(code);
        assert!(
            line.contains(says) && line.contains(&state.file().display().to_string()),
            "{args:?}: {line}"
        );
    }
}

#[test]
fn a_truncated_state_file_is_reported_damaged() {
    let state = State::seeded();
    let length = std::fs::metadata(state.file()).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(state.file())
        .unwrap()
        .set_len(length / 2)
        .unwrap();
    expect_every_command(&state, 5, "is damaged");
}

#[test]
fn random_bytes_over_a_page_in_the_middle_are_reported_damaged() {
    let state = State::seeded();
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .open(state.file())
        .unwrap();
    // Page 3 of 4096-byte pages: a table's b-tree, not the header.
    file.seek(SeekFrom::Start(2 * 4096)).unwrap();
    let noise: Vec<u8> = (0..4096_u32)
        .map(|n| (n.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    file.write_all(&noise).unwrap();
    drop(file);
    expect_every_command(&state, 5, "is damaged");
}

#[test]
fn a_directory_in_place_of_the_state_file_is_a_configuration_error() {
    let state = State {
        dir: tempfile::tempdir().unwrap(),
    };
    std::fs::create_dir_all(state.file()).unwrap();
    expect_every_command(&state, 4, "is not a file");
}

/// Makes a file unwritable for this process, root included, until dropped: the
/// immutable attribute (root ignores permissions), or the permissions for others.
struct Unwritable(PathBuf);

impl Unwritable {
    fn new(path: PathBuf) -> Self {
        let immutable = Command::new("chattr")
            .arg("+i")
            .arg(&path)
            .status()
            .is_ok_and(|status| status.success());
        if !immutable {
            // Without chattr only permissions are left, and they bind only non-root.
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o444)).unwrap();
        }
        let unwritable = Self(path);
        assert!(
            std::fs::OpenOptions::new()
                .write(true)
                .open(&unwritable.0)
                .is_err(),
            "cannot make {} unwritable here (no chattr, and running as root)",
            unwritable.0.display()
        );
        unwritable
    }
}

impl Drop for Unwritable {
    fn drop(&mut self) {
        let _ = Command::new("chattr").arg("-i").arg(&self.0).status();
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(&self.0, std::fs::Permissions::from_mode(0o644));
    }
}

#[test]
fn a_state_file_that_cannot_be_written_is_a_configuration_error_naming_it() {
    let state = State::seeded();
    let _unwritable = Unwritable::new(state.file());
    for args in [
        &["seed"][..],
        &["set-fail-probability", "0"],
        &[
            "order",
            "create",
            "customer-1",
            "item-1",
            "--mode",
            "workflow",
        ],
    ] {
        let failed = state.run(args);
        let line = failed.expect_error(4);
        assert!(
            line.contains("is not writable") && line.contains(&state.file().display().to_string()),
            "{args:?}: {line}"
        );
    }
}

#[test]
fn a_lock_held_by_another_process_is_waited_for_no_longer_than_the_timeout() {
    let state = State::seeded();
    let holder = rusqlite::Connection::open(state.file()).unwrap();
    holder.execute_batch("BEGIN IMMEDIATE").unwrap();
    for args in [
        &[
            "order",
            "create",
            "customer-1",
            "item-1",
            "--mode",
            "events",
            "--timeout",
            "1",
        ][..],
        &[
            "deliver",
            "customer-1",
            "01KDX8Q7V3M2N4P6R8S0T2W4Y6",
            "--timeout",
            "1",
        ],
        &[
            "cancel",
            "customer-1",
            "01KDX8Q7V3M2N4P6R8S0T2W4Y6",
            "--timeout",
            "2",
        ],
    ] {
        let started = Instant::now();
        let failed = state.run(args);
        let took = started.elapsed();
        let line = failed.expect_error(5);
        assert!(
            line.contains("is locked by another process"),
            "{args:?}: {line}"
        );
        assert!(took < Duration::from_secs(4), "{args:?} waited {took:?}");
    }
    holder.execute_batch("ROLLBACK").unwrap();
    state.run(&["seed"]).expect_success();
}

#[test]
fn a_state_file_changed_under_a_running_server_gives_answers_not_a_crash() {
    let state = State::seeded();
    let (mut server, address) = serve(&mut state.command());
    let ask = |path: &str| {
        let mut stream = TcpStream::connect(&address).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        write!(stream, "GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        let mut answer = String::new();
        let _ = stream.read_to_string(&mut answer);
        answer
    };
    assert!(ask("/inventory/describe/item-1").starts_with("HTTP/1.1 200"));
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(state.file())
        .unwrap();
    for length in [4096, 0] {
        file.set_len(length).unwrap();
        for path in [
            "/inventory/describe/item-1",
            "/customer/describe/customer-1",
            "/order/create/customer-1/item-1",
            "/payment/pay/10.00",
        ] {
            let answer = ask(path);
            let body = answer
                .split_once("\r\n\r\n")
                .map(|(_, body)| body)
                .unwrap_or("");
            assert!(
                serde_json::from_str::<serde_json::Value>(body).is_ok(),
                "{path}: {answer}"
            );
        }
    }
    std::thread::sleep(Duration::from_millis(1500));
    assert!(
        server.try_wait().unwrap().is_none(),
        "the server ended: {:?}",
        server.try_wait()
    );
    server.kill().unwrap();
    server.wait().unwrap();
}
