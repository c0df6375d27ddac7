//! pam_push benchmark: time from the device's answer to the module's return (p50/p99), and the
//! CPU time the module spends per authentication outside the wait.
//!
//! Runs the module's whole path except PAM itself (`authenticate::run`: arguments, config file
//! with its permission checks, API key file, client, challenge, message, long-poll wait, signature
//! verification, outcome, log line) against a real pushauthd on 127.0.0.1 in this process, with a
//! simulated device answering from another thread. CPU time is the calling thread's own
//! (`CLOCK_THREAD_CPUTIME_ID`), so the server's and the device's threads are not counted; a
//! blocked wait costs none, so it is the module's work outside the wait.
//!
//! When run as root with `pamtester` installed, a second phase runs the real thing: the built
//! `libpam_push.so` in a PAM service file, `pamtester` as the application, and the time from the
//! device's answer to pamtester's exit.
//!
//! `cargo run --release -p pam_push --example bench -- [ROUNDS]` (default 200).
#![allow(clippy::unwrap_used, clippy::expect_used)] // a bench harness fails loudly on what it did not expect

use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use pam_push::authenticate::{run, ConvFailed, Conversation, Level, Log, PamCode, PamEnv};
use pam_push::config::Ownership;
use pam_push::context::LoginFacts;
use pushauth_device::{Decision, DeviceClient};
use pushauth_testkit::TestServer;
use zeroize::Zeroizing;

/// The code in the module's message ("… type 482 913 on your device …"), without the space it
/// is grouped with for reading.
fn code_in(text: &str) -> Option<String> {
    let rest = text.split("type ").nth(1)?;
    let code: String = rest
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == ' ')
        .filter(char::is_ascii_digit)
        .collect();
    (!code.is_empty()).then_some(code)
}

/// Shows the code to the "person", who passes it to the device thread.
struct Conv(mpsc::Sender<String>);

impl Conversation for Conv {
    fn prompt(&mut self, _text: &str) -> Result<Zeroizing<String>, ConvFailed> {
        Err(ConvFailed)
    }
    fn info(&mut self, text: &str) -> Result<(), ConvFailed> {
        let code = code_in(text).ok_or(ConvFailed)?;
        self.0.send(code).map_err(|_| ConvFailed)
    }
    fn error(&mut self, _text: &str) -> Result<(), ConvFailed> {
        Ok(())
    }
}

struct Env;

impl PamEnv for Env {
    fn facts(&self) -> LoginFacts {
        LoginFacts {
            service: Some("sudo".into()),
            host: pam_push::system::hostname(),
            rhost: None,
            tty: Some("/dev/pts/1".into()),
            ssh_auth_info: None,
            argv: Some(vec!["sudo".into(), "id".into()]),
        }
    }
    fn user_groups(
        &self,
        _user: &str,
    ) -> Result<Option<Vec<pam_push::policy::UserGroup>>, pam_push::system::LookupFailed> {
        Ok(Some(vec![pam_push::policy::UserGroup {
            gid: 100,
            name: Some("users".into()),
        }]))
    }
    fn group_id(&self, _name: &str) -> pam_push::policy::GroupId {
        pam_push::policy::GroupId::NoSuchGroup
    }
}

struct NoLog;

impl Log for NoLog {
    fn log(&mut self, _level: Level, _line: &str) {}
}

fn thread_cpu() -> Duration {
    let ts = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
    Duration::new(
        u64::try_from(ts.tv_sec).unwrap_or(0),
        u32::try_from(ts.tv_nsec).unwrap_or(0),
    )
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let rounds: usize = std::env::args()
        .nth(1)
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(200);
    let server = TestServer::start_with(|cfg| {
        cfg.limits.max_new_per_window = u32::MAX;
        cfg.limits.max_new_per_user_window = u32::MAX;
    });
    let api_key = server.api_key();
    let profile = server.enroll("alice", "bench phone").profile;

    // The module's files, owned by us with the modes it demands.
    use std::os::unix::fs::PermissionsExt;
    let etc = tempfile::tempdir()?;
    let key_file = etc.path().join("api-key");
    std::fs::write(&key_file, format!("{api_key}\n"))?;
    std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o600))?;
    let conf = etc.path().join("pam_push.conf");
    std::fs::write(
        &conf,
        format!(
            "server = \"{}\"\napi_key_file = \"{}\"\ntimeout = 30\n",
            server.url(),
            key_file.display()
        ),
    )?;
    std::fs::set_permissions(&conf, std::fs::Permissions::from_mode(0o600))?;
    let conf_arg = format!("conf={}", conf.display());
    let owner = Ownership {
        uid: pushauth_testkit::euid(),
    };

    // The device: waits for the code, finds the challenge, stamps the time, answers.
    let (code_tx, code_rx) = mpsc::channel::<String>();
    let answered_at: Arc<Mutex<Option<Instant>>> = Arc::default();
    let stamp = answered_at.clone();
    let device_thread = thread::spawn(move || -> Result<(), String> {
        let device = DeviceClient::new(&profile).map_err(|e| e.to_string())?;
        for code in code_rx {
            let challenge = loop {
                let open = device.pending(5).map_err(|e| e.to_string())?;
                if let Some(c) = open.into_iter().find(|c| !c.state.is_terminal()) {
                    break c;
                }
            };
            if let Ok(mut at) = stamp.lock() {
                *at = Some(Instant::now());
            }
            device
                .respond(&challenge, Decision::Approve, &code)
                .map_err(|e| e.to_string())?;
        }
        Ok(())
    });

    let mut latencies = Vec::with_capacity(rounds);
    let mut cpu = Vec::with_capacity(rounds);
    for round in 0..rounds {
        let mut conv = Conv(code_tx.clone());
        let cpu_before = thread_cpu();
        let code = run(
            &[&conf_arg],
            Some("alice"),
            owner,
            &Env,
            &mut conv,
            &mut NoLog,
        );
        let returned = Instant::now();
        let cpu_used = thread_cpu() - cpu_before;
        if code != PamCode::Success {
            return Err(format!("round {round}: {code:?}").into());
        }
        let answered = answered_at
            .lock()
            .map_err(|_| "poisoned")?
            .take()
            .ok_or("no answer time")?;
        latencies.push(returned.saturating_duration_since(answered));
        cpu.push(cpu_used);
    }
    let pamtester = pamtester_rounds(rounds, &conf, &code_tx, &answered_at)?;
    drop(code_tx);
    device_thread
        .join()
        .map_err(|_| "device thread panicked")??;
    server.shutdown();

    latencies.sort();
    cpu.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!("pam_push bench: {rounds} approved authentications against pushauthd on 127.0.0.1");
    println!(
        "device answer -> module return: p50 {:.2} ms  p99 {:.2} ms  max {:.2} ms",
        ms(percentile(&latencies, 0.5)),
        ms(percentile(&latencies, 0.99)),
        ms(*latencies.last().unwrap_or(&Duration::ZERO)),
    );
    println!(
        "module CPU per authentication (outside the wait): p50 {:.2} ms  p99 {:.2} ms  mean {:.2} ms",
        ms(percentile(&cpu, 0.5)),
        ms(percentile(&cpu, 0.99)),
        ms(cpu.iter().sum::<Duration>() / rounds.max(1) as u32),
    );
    match pamtester {
        Some(mut real) => {
            real.sort();
            println!(
                "device answer -> pamtester exit (real PAM, {} rounds): p50 {:.2} ms  p99 {:.2} ms  max {:.2} ms",
                real.len(),
                ms(percentile(&real, 0.5)),
                ms(percentile(&real, 0.99)),
                ms(*real.last().unwrap_or(&Duration::ZERO)),
            );
        }
        None => {
            println!("pamtester phase skipped (needs root, pamtester and the built libpam_push.so)")
        }
    }
    Ok(())
}

/// The real-PAM phase: pamtester loads the built module through a PAM service file; the code is
/// read from pamtester's output, as a person would read it. `None` when it cannot run here.
fn pamtester_rounds(
    rounds: usize,
    conf: &std::path::Path,
    code_tx: &mpsc::Sender<String>,
    answered_at: &Arc<Mutex<Option<Instant>>>,
) -> Result<Option<Vec<Duration>>, Box<dyn std::error::Error>> {
    use std::io::{BufRead, BufReader, Read};
    use std::process::{Command as Process, Stdio};

    let root = pushauth_testkit::euid() == 0;
    let module = std::env::current_exe()?
        .parent()
        .and_then(|examples| examples.parent())
        .map(|dir| dir.join("libpam_push.so"));
    let have_pamtester = Process::new("pamtester").arg("--version").output().is_ok();
    let Some(module) = module.filter(|m| m.exists() && root && have_pamtester) else {
        return Ok(None);
    };
    // Message mode: the module shows the code and returns as soon as the device answers.
    let conf_text = std::fs::read_to_string(conf)? + "prompt = \"never\"\n";
    std::fs::write(conf, conf_text)?;
    let service = "pushauth-bench";
    let service_file = std::path::Path::new("/etc/pam.d").join(service);
    std::fs::write(
        &service_file,
        format!(
            "auth required {} conf={}\naccount required pam_permit.so\n",
            module.display(),
            conf.display()
        ),
    )?;
    let result = (|| -> Result<Vec<Duration>, Box<dyn std::error::Error>> {
        let mut latencies = Vec::with_capacity(rounds);
        for round in 0..rounds {
            // pamtester writes the message through stdio; unbuffered, it reaches us at once.
            let mut child = Process::new("stdbuf")
                .args(["-o0", "pamtester", service, "alice", "authenticate"])
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()?;
            let stdout = child.stdout.take().ok_or("no stdout")?;
            let mut lines = BufReader::new(stdout).lines();
            let code = loop {
                let line = lines.next().ok_or("pamtester ended without a code")??;
                if let Some(code) = code_in(&line) {
                    break code;
                }
            };
            code_tx.send(code)?;
            let mut rest = String::new();
            for line in lines {
                rest.push_str(&line?);
            }
            let status = child.wait()?;
            let returned = Instant::now();
            if !status.success() || !rest.contains("successfully authenticated") {
                let mut err = String::new();
                if let Some(mut e) = child.stderr.take() {
                    e.read_to_string(&mut err)?;
                }
                return Err(format!("pamtester round {round}: {status} {rest} {err}").into());
            }
            let answered = answered_at
                .lock()
                .map_err(|_| "poisoned")?
                .take()
                .ok_or("no answer time")?;
            latencies.push(returned.saturating_duration_since(answered));
        }
        Ok(latencies)
    })();
    let _ = std::fs::remove_file(&service_file);
    result.map(Some)
}
