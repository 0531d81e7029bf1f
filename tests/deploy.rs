//! The deployment artifacts agree with the binary: the Dockerfile, the compose
//! example, the container config and the systemd unit name the same paths,
//! port, user and commands as the library's defaults and the CLI. The files
//! are read as text; nothing here needs Docker, systemd or the network.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use assert_cmd::Command;
use meeting_archiver::config::{Config, ENV_APP_KEY, defaults};

/// Where systemd puts a unit's credentials (`$CREDENTIALS_DIRECTORY`).
const CREDENTIALS_ROOT: &str = "/run/credentials";
/// Where Docker and Compose mount secrets.
const SECRETS_ROOT: &str = "/run/secrets";
/// The variable naming the config file (main.rs, `--config`).
const ENV_CONFIG: &str = "MEETING_ARCHIVER_CONFIG";
const UNIT: &str = "meeting-archiver.service";

fn read(rel: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(rel);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The binary's file name, as Cargo built it.
fn bin_name() -> String {
    Path::new(env!("CARGO_BIN_EXE_meeting-archiver"))
        .file_name()
        .and_then(|n| n.to_str())
        .expect("binary name")
        .to_string()
}

/// `meeting-archiver --help`, with no config from the environment.
fn help() -> String {
    let out = Command::cargo_bin("meeting-archiver")
        .expect("binary built")
        .arg("--help")
        .env_remove(ENV_CONFIG)
        .output()
        .expect("binary runs");
    assert!(out.status.success(), "--help failed: {out:?}");
    String::from_utf8(out.stdout).expect("utf-8 help")
}

/// The default of `--config`, as the binary prints it.
fn default_config_path() -> PathBuf {
    let help = help();
    let flag = help.find("--config").expect("--config in --help");
    let rest = &help[flag..];
    let start = rest.find("[default: ").expect("--config has a default") + "[default: ".len();
    let end = rest[start..].find(']').expect("closing bracket");
    PathBuf::from(&rest[start..start + end])
}

/// `"30s"`, `"2min"`, `"1h"` (the subset systemd and Compose both accept).
fn duration(text: &str) -> Duration {
    let text = text.trim().trim_matches('"');
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let n: u64 = text[..split]
        .parse()
        .unwrap_or_else(|_| panic!("duration {text:?}"));
    let secs = match &text[split..] {
        "" | "s" => n,
        "m" | "min" => n * 60,
        "h" => n * 3600,
        unit => panic!("unexpected unit {unit:?} in {text:?}"),
    };
    Duration::from_secs(secs)
}

/// A JSON-style string array such as `["a", "b"]`.
fn json_array(text: &str) -> Vec<String> {
    let inner = text
        .trim()
        .strip_prefix('[')
        .and_then(|t| t.strip_suffix(']'))
        .unwrap_or_else(|| panic!("not an exec-form array: {text}"));
    inner
        .split(',')
        .map(|s| s.trim().trim_matches('"').to_string())
        .collect()
}

// --- Dockerfile --------------------------------------------------------------

/// One instruction: keyword (upper case) and its arguments, continuations joined.
struct Instruction {
    keyword: String,
    args: String,
}

struct Dockerfile {
    stages: Vec<Vec<Instruction>>,
}

impl Dockerfile {
    fn load() -> Dockerfile {
        let text = read("Dockerfile");
        let mut logical = Vec::new();
        let mut current = String::new();
        for line in text.lines() {
            let trimmed = line.trim();
            if trimmed.starts_with('#') || (trimmed.is_empty() && current.is_empty()) {
                continue;
            }
            match trimmed.strip_suffix('\\') {
                Some(part) => {
                    current.push_str(part);
                    current.push(' ');
                }
                None => {
                    current.push_str(trimmed);
                    logical.push(std::mem::take(&mut current));
                }
            }
        }
        let mut stages: Vec<Vec<Instruction>> = Vec::new();
        for line in logical {
            let (keyword, args) = line.split_once(char::is_whitespace).unwrap_or((&line, ""));
            let keyword = keyword.to_ascii_uppercase();
            if keyword == "FROM" {
                stages.push(Vec::new());
            }
            stages
                .last_mut()
                .expect("a FROM before any other instruction")
                .push(Instruction {
                    keyword,
                    args: args.trim().to_string(),
                });
        }
        Dockerfile { stages }
    }

    /// The image that ships: the last stage.
    fn runtime(&self) -> &[Instruction] {
        self.stages.last().expect("a stage")
    }

    /// The arguments of the runtime stage's only `keyword` instruction.
    fn one(&self, keyword: &str) -> &str {
        let found: Vec<&Instruction> = self
            .runtime()
            .iter()
            .filter(|i| i.keyword == keyword)
            .collect();
        assert_eq!(
            found.len(),
            1,
            "expected one {keyword} in the runtime stage"
        );
        &found[0].args
    }

    fn volume(&self) -> PathBuf {
        let args = self.one("VOLUME");
        let paths = if args.starts_with('[') {
            json_array(args)
        } else {
            args.split_whitespace().map(str::to_string).collect()
        };
        assert_eq!(paths.len(), 1, "one volume for the ledger and the archive");
        PathBuf::from(&paths[0])
    }

    fn env(&self, name: &str) -> Option<String> {
        self.runtime()
            .iter()
            .filter(|i| i.keyword == "ENV")
            .find_map(|i| {
                let (k, v) = i.args.split_once('=')?;
                (k.trim() == name).then(|| v.trim().trim_matches('"').to_string())
            })
    }

    /// The runtime stage's `RUN` text, joined.
    fn runs(&self) -> String {
        self.runtime()
            .iter()
            .filter(|i| i.keyword == "RUN")
            .map(|i| i.args.as_str())
            .collect::<Vec<_>>()
            .join(" && ")
    }

    /// `(name, uid)` of the user `useradd` creates in the runtime stage.
    fn created_user(&self) -> (String, u32) {
        let runs = self.runs();
        let start = runs
            .find("useradd ")
            .expect("the runtime stage creates a user");
        let command = runs[start..].split("&&").next().expect("command");
        let words: Vec<&str> = command.split_whitespace().collect();
        let uid = words
            .iter()
            .position(|w| *w == "--uid" || *w == "-u")
            .map(|i| words[i + 1].parse().expect("numeric uid"))
            .expect("useradd --uid");
        let name = words.last().expect("user name").to_string();
        (name, uid)
    }
}

// --- systemd unit ------------------------------------------------------------

struct Unit {
    text: String,
    /// `[Service]` settings, every value of repeatable keys in order.
    service: HashMap<String, Vec<String>>,
}

impl Unit {
    fn load() -> Unit {
        let text = read(&format!("systemd/{UNIT}"));
        let mut service: HashMap<String, Vec<String>> = HashMap::new();
        let mut section = String::new();
        for line in text.lines().map(str::trim) {
            if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
                continue;
            }
            if line.starts_with('[') {
                section = line.to_string();
                continue;
            }
            if section == "[Service]" {
                let (k, v) = line.split_once('=').expect("key=value");
                service
                    .entry(k.trim().to_string())
                    .or_default()
                    .push(v.trim().to_string());
            }
        }
        Unit { text, service }
    }

    fn get(&self, key: &str) -> &str {
        match self.service.get(key).map(Vec::as_slice) {
            Some([value]) => value,
            other => panic!("[Service] {key}= should be set once, found {other:?}"),
        }
    }

    fn exec_start(&self) -> Vec<&str> {
        self.get("ExecStart").split_whitespace().collect()
    }

    /// `/var/lib/<StateDirectory>`.
    fn state_dir(&self) -> PathBuf {
        Path::new("/var/lib").join(self.get("StateDirectory"))
    }

    /// `/etc/<ConfigurationDirectory>`.
    fn config_dir(&self) -> PathBuf {
        Path::new("/etc").join(self.get("ConfigurationDirectory"))
    }

    /// `(name, source)` of the App Key credential.
    fn app_key_credential(&self) -> (String, PathBuf) {
        let (name, source) = self
            .get("LoadCredential")
            .split_once(':')
            .expect("LoadCredential=NAME:PATH");
        (name.to_string(), PathBuf::from(source))
    }

    /// The `app_key_file` the config must name to read the credential.
    fn app_key_file(&self) -> String {
        format!("{CREDENTIALS_ROOT}/{UNIT}/{}", self.app_key_credential().0)
    }
}

// --- Compose -----------------------------------------------------------------

/// The list items (`- ...`) under `key:` in the service, unquoted.
fn compose_list(compose: &str, key: &str) -> Vec<String> {
    let mut items = Vec::new();
    let mut in_key: Option<usize> = None;
    for line in compose.lines() {
        let indent = line.len() - line.trim_start().len();
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        if let Some(key_indent) = in_key {
            if indent <= key_indent {
                in_key = None;
            } else if let Some(item) = trimmed.strip_prefix("- ") {
                items.push(item.trim().trim_matches('"').to_string());
                continue;
            }
        }
        if trimmed == format!("{key}:") && indent > 0 {
            in_key = Some(indent);
        }
    }
    items
}

/// The value of the first `key: value` line.
fn compose_value(compose: &str, key: &str) -> Option<String> {
    compose.lines().find_map(|line| {
        let (k, v) = line.trim().split_once(':')?;
        (k == key && !v.trim().is_empty()).then(|| v.trim().trim_matches('"').to_string())
    })
}

// --- the tests ---------------------------------------------------------------

#[test]
fn the_example_config_spells_out_the_library_defaults() {
    let config = Config::from_toml(&read("config/meeting-archiver.example.toml"), &|_| None)
        .expect("the example config is valid");
    assert_eq!(config.download.dir, Path::new(defaults::DOWNLOAD_DIR));
    assert_eq!(config.ledger.path, Path::new(defaults::LEDGER_PATH));
    assert_eq!(config.server.listen, Some(defaults::LISTEN));
    assert_eq!(config.download.shutdown_timeout, defaults::SHUTDOWN_TIMEOUT);
}

#[test]
fn one_docker_volume_and_the_state_directory_hold_the_default_ledger_and_archive() {
    let volume = Dockerfile::load().volume();
    let state = Unit::load().state_dir();
    assert_eq!(
        volume, state,
        "the image's volume is the unit's StateDirectory"
    );
    for default in [defaults::DOWNLOAD_DIR, defaults::LEDGER_PATH] {
        assert!(
            Path::new(default).starts_with(&volume),
            "{default} is outside the volume {}",
            volume.display()
        );
    }
}

#[test]
fn the_image_and_the_unit_read_the_binarys_default_config() {
    let default = default_config_path();
    let docker = Dockerfile::load();
    assert_eq!(
        docker.env(ENV_CONFIG).map(PathBuf::from),
        Some(default.clone()),
        "ENV {ENV_CONFIG} in the Dockerfile"
    );
    let unit = Unit::load();
    assert_eq!(Some(unit.config_dir().as_path()), default.parent());
    let exec = unit.exec_start();
    if let Some(i) = exec.iter().position(|w| *w == "--config") {
        assert_eq!(Path::new(exec[i + 1]), default, "ExecStart --config");
    }
    let compose = read("docker-compose.example.yml");
    let mounts = compose_list(&compose, "volumes");
    let target = format!(":{}", default.display());
    assert!(
        mounts
            .iter()
            .any(|m| m.ends_with(&target) || m.ends_with(&format!("{target}:ro"))),
        "the compose file mounts a config at {}: {mounts:?}",
        default.display()
    );
}

#[test]
fn the_image_exposes_and_the_container_config_listens_on_the_default_port() {
    let port = defaults::LISTEN.port();
    let docker = Dockerfile::load();
    assert_eq!(docker.one("EXPOSE"), port.to_string());

    // The container config, with its secret file stood in by a temp file.
    let volume = docker.volume();
    let compose = read("docker-compose.example.yml");
    let secrets = compose_list(&compose, "secrets");
    assert_eq!(secrets.len(), 1, "one secret, the App Key: {secrets:?}");
    let secret_path = format!("{SECRETS_ROOT}/{}", secrets[0]);
    let text = read("config/docker.toml");
    let key_line = format!("app_key_file = \"{secret_path}\"");
    assert!(
        text.contains(&key_line),
        "config/docker.toml reads the compose secret: {key_line}"
    );
    let key = tempfile::NamedTempFile::new().expect("temp file");
    std::fs::write(key.path(), "not-a-real-key\n").expect("write key");
    let text = text.replace(&secret_path, &key.path().display().to_string());
    let config = Config::from_toml(&text, &|_| None).expect("config/docker.toml is valid");
    let listen = config.server.listen.expect("the server is on");
    assert!(
        listen.ip().is_unspecified(),
        "{listen}: not reachable from outside"
    );
    assert_eq!(listen.port(), port);
    assert!(config.download.dir.starts_with(&volume));
    assert!(config.ledger.path.starts_with(&volume));

    // Without the secret, the environment variable does it.
    let without_file: String = read("config/docker.toml")
        .lines()
        .filter(|l| !l.trim_start().starts_with("app_key_file"))
        .map(|l| format!("{l}\n"))
        .collect();
    Config::from_toml(&without_file, &|name| {
        (name == ENV_APP_KEY).then(|| "not-a-real-key".to_string())
    })
    .expect("config/docker.toml without app_key_file takes the key from the environment");
}

#[test]
fn the_compose_file_publishes_the_port_and_mounts_the_volume() {
    let docker = Dockerfile::load();
    let compose = read("docker-compose.example.yml");
    let port = format!(":{}", defaults::LISTEN.port());
    let ports = compose_list(&compose, "ports");
    assert!(
        ports.iter().any(|p| p.ends_with(&port)),
        "container port {port} published: {ports:?}"
    );
    let volume = format!(":{}", docker.volume().display());
    let mounts = compose_list(&compose, "volumes");
    assert!(
        mounts.iter().any(|m| m.ends_with(&volume)),
        "the volume {volume} is mounted: {mounts:?}"
    );
    assert!(
        compose_value(&compose, "restart").is_some(),
        "a restart policy"
    );
    let grace = compose_value(&compose, "stop_grace_period").expect("stop_grace_period");
    assert!(duration(&grace) > defaults::SHUTDOWN_TIMEOUT);
    assert!(
        !compose.contains("healthcheck:"),
        "the health check is the image's"
    );
}

#[test]
fn the_image_runs_as_the_service_user_who_owns_the_volume() {
    let docker = Dockerfile::load();
    let (name, uid) = docker.created_user();
    assert_ne!(uid, 0);
    let user = docker.one("USER");
    let user = user.split(':').next().expect("user");
    assert!(
        user == name || user == uid.to_string(),
        "USER {user} is the created user {name} ({uid})"
    );
    let volume = docker.volume().display().to_string();
    let owned = format!("-o {name} -g {name} ");
    let runs = docker.runs();
    assert!(
        runs.contains(&owned) && runs.contains(&volume),
        "the volume folder is created owned by {name}"
    );
    let unit = Unit::load();
    assert_eq!(unit.get("User"), name, "the unit's user is the image's");
    let sysusers = read("systemd/meeting-archiver.sysusers");
    let entry = sysusers
        .lines()
        .find(|l| l.starts_with("u "))
        .expect("a sysusers u line");
    let words: Vec<&str> = entry.split_whitespace().collect();
    assert_eq!(words[1], name, "sysusers creates the unit's user");
    assert_eq!(
        words.last().map(PathBuf::from),
        Some(unit.state_dir()),
        "its home is the state directory"
    );
}

#[test]
fn the_image_runs_the_daemon_checks_health_and_stops_on_sigterm() {
    let help = help();
    for command in ["run", "healthcheck"] {
        assert!(
            help.lines()
                .any(|l| l.split_whitespace().next() == Some(command)),
            "`{command}` is a subcommand:\n{help}"
        );
    }
    let docker = Dockerfile::load();
    assert!(docker.stages.len() >= 2, "a multi-stage build");
    let build = docker.stages[..docker.stages.len() - 1]
        .iter()
        .flatten()
        .filter(|i| i.keyword == "RUN" && i.args.contains("cargo build"))
        .map(|i| i.args.as_str())
        .collect::<Vec<_>>()
        .join(" ");
    assert!(build.contains("--locked"), "cargo build --locked: {build}");

    let entrypoint = json_array(docker.one("ENTRYPOINT"));
    assert_eq!(entrypoint.len(), 1);
    let exec = Unit::load().exec_start()[0].to_string();
    assert_eq!(
        entrypoint[0], exec,
        "the image and the unit install the binary alike"
    );
    assert_eq!(
        Path::new(&exec).file_name().and_then(|n| n.to_str()),
        Some(bin_name().as_str())
    );
    assert_eq!(json_array(docker.one("CMD")), ["run"]);
    let health = docker.one("HEALTHCHECK");
    let cmd = health.find("CMD ").expect("HEALTHCHECK ... CMD [...]");
    assert_eq!(
        json_array(&health[cmd + 4..]),
        [bin_name(), "healthcheck".into()]
    );
    assert_eq!(docker.one("STOPSIGNAL"), "SIGTERM");
}

#[test]
fn the_unit_is_a_notify_service_with_a_watchdog() {
    let unit = Unit::load();
    assert_eq!(unit.get("Type"), "notify");
    assert_eq!(unit.get("NotifyAccess"), "main");
    let exec = unit.exec_start();
    assert_eq!(exec.last(), Some(&"run"), "ExecStart runs the daemon");
    assert!(Path::new(exec[0]).is_absolute());
    assert!(duration(unit.get("WatchdogSec")) > Duration::ZERO);
    assert_eq!(unit.get("Restart"), "on-failure");
    assert!(unit.get("ExecReload").contains("HUP"), "reload is SIGHUP");
    assert!(
        duration(unit.get("TimeoutStopSec")) > defaults::SHUTDOWN_TIMEOUT,
        "systemd waits longer than the daemon's shutdown timeout"
    );
    assert!(
        unit.text.contains("#ReadWritePaths="),
        "a ReadWritePaths= line to uncomment for another download.dir"
    );
}

#[test]
fn the_app_key_credential_is_where_the_docs_say() {
    let unit = Unit::load();
    let (_, source) = unit.app_key_credential();
    assert_eq!(
        source.parent(),
        Some(unit.config_dir().as_path()),
        "the key lives beside the config"
    );
    let documented = unit.app_key_file();
    let line = format!("app_key_file = \"{documented}\"");
    assert!(unit.text.contains(&line), "the unit documents `{line}`");
    // Every credentials path the docs mention is this unit's.
    let unit_credentials = format!("{CREDENTIALS_ROOT}/{UNIT}/");
    for file in ["README.md", "config/meeting-archiver.example.toml"] {
        let text = read(file);
        for (at, _) in text.match_indices(&format!("{CREDENTIALS_ROOT}/")) {
            assert!(
                text[at..].starts_with(&unit_credentials),
                "{file} names {:?}; credentials of the unit are under {unit_credentials}",
                text[at..].lines().next().unwrap_or_default()
            );
        }
    }
}

#[test]
fn the_docker_build_context_holds_what_the_dockerfile_copies() {
    let ignore = read(".dockerignore");
    let rules: Vec<&str> = ignore
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    assert_eq!(
        rules.first(),
        Some(&"*"),
        "an allow list: everything else stays out"
    );
    let allowed: Vec<&str> = rules[1..]
        .iter()
        .map(|r| r.strip_prefix('!').expect("only exceptions after *"))
        .collect();
    let docker = Dockerfile::load();
    for copy in docker
        .stages
        .iter()
        .flatten()
        .filter(|i| i.keyword == "COPY")
    {
        if copy.args.starts_with("--from") {
            continue;
        }
        let words: Vec<&str> = copy.args.split_whitespace().collect();
        for source in &words[..words.len() - 1] {
            assert!(
                allowed.contains(source),
                "COPY {source}: not in the build context ({allowed:?})"
            );
            assert!(
                Path::new(env!("CARGO_MANIFEST_DIR")).join(source).exists(),
                "COPY {source}: no such file"
            );
        }
    }
}

/// The build stage's `COPY` sources (relative to the build context).
fn build_context_sources(docker: &Dockerfile) -> Vec<String> {
    let build = docker.stages.first().expect("a build stage");
    build
        .iter()
        .filter(|i| i.keyword == "COPY" && !i.args.starts_with("--from"))
        .flat_map(|i| {
            let words: Vec<&str> = i.args.split_whitespace().collect();
            let sources = &words[..words.len().saturating_sub(1)];
            sources.iter().map(|s| s.to_string()).collect::<Vec<_>>()
        })
        .collect()
}

fn copy_tree(from: &Path, to: &Path) {
    if from.is_dir() {
        std::fs::create_dir_all(to).expect("mkdir");
        for entry in std::fs::read_dir(from).expect("read dir") {
            let entry = entry.expect("entry");
            copy_tree(&entry.path(), &to.join(entry.file_name()));
        }
    } else {
        std::fs::copy(from, to).expect("copy");
    }
}

/// What `.dockerignore` lets in is checked above; this checks that what
/// the build stage copies is enough for cargo (the image build once failed
/// on a bench the manifest declares but the context left out).
#[test]
fn the_docker_build_context_is_complete_for_cargo() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let context = tempfile::tempdir().expect("tempdir");
    for source in build_context_sources(&Dockerfile::load()) {
        copy_tree(&root.join(&source), &context.path().join(&source));
    }
    // The image's first cargo step, offline (the crates are in the local
    // cache): it refuses a manifest whose declared targets are missing.
    let out = std::process::Command::new(env!("CARGO"))
        .args(["fetch", "--locked", "--offline"])
        .current_dir(context.path())
        .output()
        .expect("cargo metadata runs");
    assert!(
        out.status.success(),
        "cargo cannot read the image's build context: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}
