//! Terminals end to end: `rpod run -it`, detach, `rpod attach`, driven
//! through a real pseudo-terminal.

use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use nix::libc;
use nix::pty::{openpty, Winsize};
use rpod_e2e::Env;

struct Pty {
    master: OwnedFd,
    slave: OwnedFd,
    child: Child,
    seen: String,
}

fn winsize(rows: u16, cols: u16) -> Winsize {
    Winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    }
}

impl Pty {
    fn spawn(env: &Env, args: &[&str], rows: u16, cols: u16) -> Pty {
        let p = openpty(Some(&winsize(rows, cols)), None).expect("openpty");
        let slave = p.slave;
        let child = env
            .cmd()
            .args(args)
            .stdin(Stdio::from(slave.try_clone().unwrap()))
            .stdout(Stdio::from(slave.try_clone().unwrap()))
            .stderr(Stdio::from(slave.try_clone().unwrap()))
            .spawn()
            .expect("spawn rpod");
        let flags = nix::fcntl::fcntl(p.master.as_raw_fd(), nix::fcntl::FcntlArg::F_GETFL).unwrap();
        let mut flags = nix::fcntl::OFlag::from_bits_truncate(flags);
        flags.insert(nix::fcntl::OFlag::O_NONBLOCK);
        nix::fcntl::fcntl(p.master.as_raw_fd(), nix::fcntl::FcntlArg::F_SETFL(flags)).unwrap();
        Pty {
            master: p.master,
            slave,
            child,
            seen: String::new(),
        }
    }

    fn write(&self, data: &[u8]) {
        let mut off = 0;
        while off < data.len() {
            match nix::unistd::write(self.master.as_fd(), &data[off..]) {
                Ok(n) => off += n,
                Err(nix::Error::EAGAIN) => std::thread::sleep(Duration::from_millis(10)),
                Err(e) => panic!("writing to the pty: {e}"),
            }
        }
    }

    /// Reads until `needle` appears in the new output; returns that output.
    fn expect(&mut self, needle: &str, secs: u64) -> String {
        let deadline = Instant::now() + Duration::from_secs(secs);
        let start = self.seen.len();
        let mut buf = [0u8; 4096];
        loop {
            if let Some(pos) = self.seen[start..].find(needle) {
                let out = self.seen[start..start + pos + needle.len()].to_string();
                let cut = start + pos + needle.len();
                self.seen = self.seen[cut..].to_string();
                return out;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {needle:?}; output so far: {:?}",
                &self.seen[start..]
            );
            match nix::unistd::read(self.master.as_raw_fd(), &mut buf) {
                Ok(0) => std::thread::sleep(Duration::from_millis(20)),
                Ok(n) => self.seen.push_str(&String::from_utf8_lossy(&buf[..n])),
                Err(nix::Error::EAGAIN) | Err(nix::Error::EIO) => {
                    std::thread::sleep(Duration::from_millis(20))
                }
                Err(e) => panic!("reading the pty: {e}"),
            }
        }
    }

    fn resize(&self, rows: u16, cols: u16) {
        nix::ioctl_write_ptr_bad!(tiocswinsz, libc::TIOCSWINSZ, libc::winsize);
        let ws = winsize(rows, cols);
        // SAFETY: TIOCSWINSZ reads one winsize.
        unsafe { tiocswinsz(self.master.as_raw_fd(), &ws) }.expect("TIOCSWINSZ");
    }

    /// Whether the terminal rpod runs on is in canonical mode with echo.
    fn cooked(&self) -> bool {
        use nix::sys::termios::LocalFlags;
        let t = nix::sys::termios::tcgetattr(self.slave.as_fd()).unwrap();
        t.local_flags
            .contains(LocalFlags::ICANON | LocalFlags::ECHO)
    }

    fn wait(&mut self, secs: u64) -> i32 {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                return st.code().unwrap_or(-1);
            }
            // keep draining so the child never blocks on a full pty
            let mut buf = [0u8; 4096];
            let _ = nix::unistd::read(self.master.as_raw_fd(), &mut buf);
            if Instant::now() >= deadline {
                let _ = self.child.kill();
                panic!("rpod did not exit within {secs}s; output: {:?}", self.seen);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

fn state(env: &Env, name: &str) -> String {
    let r = env.rpod(&["inspect", name]);
    assert_eq!(r.code, 0, "{r:?}");
    serde_json::from_str::<serde_json::Value>(&r.stdout).unwrap()[0]["State"]["Status"]
        .as_str()
        .unwrap()
        .to_string()
}

/// Types `stty size` until the container's terminal reports `want`.
fn wait_for_size(p: &mut Pty, want: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut n = 0;
    loop {
        n += 1;
        p.write(format!("stty size; echo END$(({n}+1000))\n").as_bytes());
        let out = p.expect(&format!("END{}", n + 1000), 10);
        if out.contains(want) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "terminal size never became {want}: {out:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn run_it_types_resizes_detaches_and_reattaches() {
    let Some(env) = Env::for_containers() else {
        return;
    };
    let rootfs = Env::rootfs_arg();
    let mut p = Pty::spawn(
        &env,
        &["run", "-it", "--name", "tty", "--rootfs", &rootfs, "sh"],
        30,
        100,
    );
    // typed commands run; their output comes back
    p.write(b"echo HELLO$((20+22))\n");
    p.expect("HELLO42", 20);
    // rpod put the user's terminal in raw mode while attached
    assert!(!p.cooked(), "the terminal must be raw while attached");
    // the initial size and a later resize reach the container's terminal
    wait_for_size(&mut p, "30 100");
    p.resize(40, 120);
    wait_for_size(&mut p, "40 120");
    // the detach sequence (ctrl-p, ctrl-q) leaves the container running
    p.write(&[16, 17]);
    assert_eq!(p.wait(10), 0);
    assert!(p.cooked(), "the terminal must be restored after detaching");
    assert_eq!(state(&env, "tty"), "running");
    // re-attach, use the shell, and its exit code becomes rpod's
    let mut a = Pty::spawn(&env, &["attach", "tty"], 25, 80);
    std::thread::sleep(Duration::from_millis(300));
    a.write(b"echo AGAIN$((3+4))\n");
    a.expect("AGAIN7", 20);
    a.write(b"exit 3\n");
    assert_eq!(a.wait(20), 3);
    assert!(
        a.cooked(),
        "the terminal must be restored when the container exits"
    );
    assert_eq!(state(&env, "tty"), "exited");
}

#[test]
fn custom_detach_keys_and_attach_errors() {
    let Some(env) = Env::for_containers() else {
        return;
    };
    let rootfs = Env::rootfs_arg();
    let r = env.rpod(&[
        "run",
        "-it",
        "--detach-keys",
        "ctrl-zz",
        "--rootfs",
        &rootfs,
        "sh",
    ]);
    assert_eq!(r.code, 125, "{r:?}");
    assert!(r.stderr.contains("ctrl-zz"), "{r:?}");
    let mut p = Pty::spawn(
        &env,
        &[
            "run",
            "-it",
            "--detach-keys",
            "ctrl-x",
            "--name",
            "k",
            "--rootfs",
            &rootfs,
            "sh",
        ],
        24,
        80,
    );
    p.write(b"echo UP$((1+1))\n");
    p.expect("UP2", 20);
    // ctrl-p alone is just input now; ctrl-x detaches
    p.write(&[16]);
    p.write(&[24]);
    assert_eq!(p.wait(10), 0);
    assert_eq!(state(&env, "k"), "running");
    let r = env.rpod(&["stop", "-t", "0", "k"]);
    assert_eq!(r.code, 0, "{r:?}");
    let r = env.rpod(&["attach", "k"]);
    assert_eq!(r.code, 125, "{r:?}");
    assert!(r.stderr.contains("running"), "{r:?}");
}

#[test]
fn terminal_is_restored_when_rpod_is_terminated() {
    let Some(env) = Env::for_containers() else {
        return;
    };
    let rootfs = Env::rootfs_arg();
    let mut p = Pty::spawn(
        &env,
        &["run", "-it", "--name", "term", "--rootfs", &rootfs, "sh"],
        24,
        80,
    );
    p.write(b"echo LIVE$((5+5))\n");
    p.expect("LIVE10", 20);
    assert!(!p.cooked());
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(p.child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let code = p.wait(10);
    assert_ne!(code, 0);
    assert!(p.cooked(), "SIGTERM must not leave the terminal raw");
    // the container itself keeps running under conmon
    assert_eq!(state(&env, "term"), "running");
}

/// An environment with a running container `host` to exec into.
fn env_with_host() -> Option<Env> {
    let env = Env::for_containers()?;
    let rootfs = Env::rootfs_arg();
    let r = env.rpod(&[
        "run", "-d", "--name", "host", "--rootfs", &rootfs, "sleep", "100",
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    Some(env)
}

#[test]
fn exec_it_puts_the_terminal_in_raw_mode_and_restores_it() {
    let Some(env) = env_with_host() else {
        return;
    };
    let mut p = Pty::spawn(&env, &["exec", "-it", "host", "sh"], 24, 80);
    p.write(b"echo EXEC$((40+2))\n");
    p.expect("EXEC42", 20);
    assert!(!p.cooked(), "the terminal must be raw during exec -it");
    p.write(b"exit 5\n");
    assert_eq!(p.wait(20), 5);
    assert!(p.cooked(), "the terminal must be restored after exec -it");
}

#[test]
fn exec_it_follows_the_terminal_size_and_detaches_leaving_the_session() {
    let Some(env) = env_with_host() else {
        return;
    };
    let mut p = Pty::spawn(
        &env,
        &["exec", "-it", "--detach-keys", "ctrl-x", "host", "sh"],
        24,
        80,
    );
    // the session's terminal starts at the user's size and follows it
    wait_for_size(&mut p, "24 80");
    p.resize(33, 111);
    wait_for_size(&mut p, "33 111");
    // the detach sequence ends rpod exec with 0 and leaves the shell running
    p.write(&[24]);
    assert_eq!(p.wait(10), 0);
    assert!(p.cooked(), "the terminal must be restored after detaching");
    let ids = env.inspect("host")["ExecIDs"].clone();
    assert_eq!(
        ids.as_array().map(Vec::len),
        Some(1),
        "the detached session must still be recorded: {ids}"
    );
    assert_eq!(state(&env, "host"), "running");
}
