//! `acrlink demo`: starts the emulator in-process with the demo world and narrates
//! plan → apply → plan → a change behind acrlink's back → drift → apply → drift → verify (a
//! repository outside an ABAC condition named, then fixed), running the real acrlink binary for
//! every step, as a user would.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::{ColorWhen, Exit, report_error};
use acrlink::render::style;

const DEMO_CONFIG: &str = include_str!("../../examples/demo/acrlink.toml");
const DEMO_WORLD: &str = include_str!("../../examples/demo/world.toml");
/// The partner's client secret, read from beside the file (its `client_secret_file`); the
/// emulated world's own, demo-only.
const DEMO_PARTNER_SECRET: &str = include_str!("../../examples/demo/partner-puller.secret");

/// The demo's files: the checkout's own when run from it, else embedded copies.
fn demo_files() -> std::io::Result<(PathBuf, PathBuf)> {
    let config = Path::new("examples/demo/acrlink.toml");
    let world = Path::new("examples/demo/world.toml");
    let partner_secret = Path::new("examples/demo/partner-puller.secret");
    if config.exists() && world.exists() && partner_secret.exists() {
        return Ok((config.to_path_buf(), world.to_path_buf()));
    }
    let dir = std::env::temp_dir().join(format!("acrlink-demo-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    std::fs::write(dir.join("acrlink.toml"), DEMO_CONFIG)?;
    std::fs::write(dir.join("world.toml"), DEMO_WORLD)?;
    std::fs::write(dir.join("partner-puller.secret"), DEMO_PARTNER_SECRET)?;
    Ok((dir.join("acrlink.toml"), dir.join("world.toml")))
}

struct Narrator {
    exe: PathBuf,
    config: PathBuf,
    env: Vec<(String, String)>,
    color: ColorWhen,
    step: usize,
    total: usize,
    surprises: Vec<String>,
}

impl Narrator {
    fn heading(&mut self, title: &str) {
        self.step += 1;
        anstream::println!("\n{} {}", style::bold(&format!("==> {}/{}", self.step, self.total)), style::bold(title));
    }

    /// Runs `acrlink ARGS` against the emulator and checks its exit code.
    fn run(&mut self, args: &[&str], expect: i32, meaning: &str) {
        anstream::println!("{}", style::dim(&format!("$ acrlink -c {} {}", self.config.display(), args.join(" "))));
        let color = match self.color {
            ColorWhen::Always => "always",
            ColorWhen::Never => "never",
            ColorWhen::Auto => "auto",
        };
        let status = Command::new(&self.exe)
            .arg("-c")
            .arg(&self.config)
            .arg("--color")
            .arg(color)
            .args(args)
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .status();
        match status.map(|s| s.code().unwrap_or(-1)) {
            Ok(code) if code == expect => {
                anstream::println!("{}", style::dim(&format!("(exit {code}: {meaning})")));
            }
            Ok(code) => {
                anstream::println!("{}", style::error(&format!("(exit {code}, expected {expect}: {meaning})")));
                self.surprises.push(format!("`acrlink {}` exited {code}, expected {expect}", args.join(" ")));
            }
            Err(e) => self.surprises.push(format!("cannot run acrlink: {e}")),
        }
    }
}

/// The demo's files, this executable, a runtime and the emulator running the demo world.
struct Setup {
    config: PathBuf,
    world_path: PathBuf,
    exe: PathBuf,
    runtime: tokio::runtime::Runtime,
    emulator: acrlink_emulator::Emulator,
}

fn setup() -> Result<Setup, Exit> {
    let (config, world_path) = match demo_files() {
        Ok(files) => files,
        Err(e) => {
            report_error(&format!("cannot prepare the demo files: {e}"), None);
            return Err(Exit::Error);
        }
    };
    let exe = match std::env::current_exe() {
        Ok(exe) => exe,
        Err(e) => {
            report_error(&format!("cannot find the acrlink executable: {e}"), None);
            return Err(Exit::Error);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            report_error(&format!("cannot start the async runtime: {e}"), None);
            return Err(Exit::Error);
        }
    };
    let world = match acrlink_emulator::World::from_file(&world_path) {
        Ok(world) => world,
        Err(e) => {
            report_error(&format!("cannot read the demo world {}: {e}", world_path.display()), None);
            return Err(Exit::Error);
        }
    };
    let listen = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
    let emulator = match runtime.block_on(acrlink_emulator::Emulator::start(world, listen)) {
        Ok(emulator) => emulator,
        Err(e) => {
            report_error(&format!("cannot start the emulator: {e}"), None);
            return Err(Exit::Error);
        }
    };
    Ok(Setup { config, world_path, exe, runtime, emulator })
}

pub fn run(color: ColorWhen) -> Exit {
    let Setup { config, world_path, exe, runtime, emulator } = match setup() {
        Ok(setup) => setup,
        Err(exit) => return exit,
    };
    let env: Vec<(String, String)> = emulator.env().into_iter().collect();

    anstream::println!(
        "{}",
        style::bold(
            "acrlink demo: a small AKS fleet wired to four registries (kubelet identity and pull Secrets), on the built-in Azure and Kubernetes emulator"
        )
    );
    anstream::println!(
        "{}",
        style::dim(&format!(
            "Emulated Azure (Entra + ARM over HTTPS) at {}; desired state: {}; world: {}",
            emulator.ready_info().arm_endpoint,
            config.display(),
            world_path.display()
        ))
    );
    let mut narrator = Narrator { exe, config: config.clone(), env, color, step: 0, total: 10, surprises: Vec::new() };

    narrator
        .heading("What would change? aks-dev-01 already has a grant made by hand with `az aks update --attach-acr`;");
    anstream::println!("        a grant acrlink made earlier for a decommissioned cluster is still on the registry.");
    // --show-unchanged: the hand-made grant the heading names is in place, so hidden by default.
    narrator.run(&["plan", "--detailed-exitcode", "--show-unchanged"], 2, "changes to make");

    narrator.heading(
        "Apply it (concurrently; the hand-made grant is reported, not duplicated; tokens, Secrets and service accounts follow)",
    );
    narrator.run(&["apply", "--auto-approve"], 0, "applied");

    narrator.heading("Plan again: live state now matches the file");
    narrator.run(&["plan", "--detailed-exitcode"], 0, "no changes");

    narrator.heading(
        "Pods pull: through the kubelet identity and through a pull Secret; not beyond the repositories a binding allows",
    );
    pods(&mut narrator, &runtime, &emulator);

    narrator.heading(
        "Behind acrlink's back: a grant is removed (az role assignment delete …) and the vendor's admin password is renewed (az acr credential renew …)",
    );
    tamper(&mut narrator, &emulator);

    narrator.heading("Drift is detected (exit 2), as a scheduled `acrlink drift` job would see it");
    narrator.run(&["drift"], 2, "drift");

    narrator.heading("Apply repairs it");
    narrator.run(&["apply", "--auto-approve"], 0, "repaired");

    narrator.heading("And the fleet is back in line");
    narrator.run(&["drift"], 0, "no drift");

    verify_steps(&mut narrator, &config);

    runtime.block_on(emulator.shutdown());
    anstream::println!();
    if narrator.surprises.is_empty() {
        anstream::println!("{}", style::success("Demo complete."));
        anstream::println!(
            "Try it by hand: `acrlink emulator --world {}` prints the environment to export; then run any command with `-c {}`.",
            world_path.display(),
            config.display()
        );
        Exit::Ok
    } else {
        for surprise in &narrator.surprises {
            report_error(surprise, None);
        }
        Exit::Error
    }
}

/// `acrlink verify` diagnoses a cluster that cannot pull: the payments team now needs
/// research/model, the file says so, and verify names the cause (the grant's ABAC condition
/// leaves it out) before apply fixes it. The widened file is a copy, beside copies of the files
/// next to the demo's (which it may name, relative to itself); the demo's own is left as it is.
fn verify_steps(narrator: &mut Narrator, config: &Path) {
    let widened = std::fs::read_to_string(config).map(|text| {
        text.replace("repositories = [\"payments/*\"]", "repositories = [\"payments/*\", \"research/model\"]")
    });
    let dir = std::env::temp_dir().join(format!("acrlink-demo-verify-{}", std::process::id()));
    let written = widened.and_then(|text| {
        std::fs::create_dir_all(&dir)?;
        copy_siblings(config, &dir)?;
        std::fs::write(dir.join("acrlink.toml"), text)?;
        Ok(dir.join("acrlink.toml"))
    });
    let path = match written {
        Ok(path) => path,
        Err(e) => return narrator.surprises.push(format!("cannot write the widened demo file: {e}")),
    };
    let original = std::mem::replace(&mut narrator.config, path);
    narrator.heading(
        "The payments clusters now also need research/model; the file says so. Can every cluster pull? verify names the cause",
    );
    narrator.run(&["verify", "--clusters", "team=payments"], 2, "a cluster cannot pull");
    narrator.heading("Apply the widened file: the grant's condition now covers research/model, and verify passes");
    narrator.run(&["apply", "--auto-approve"], 0, "applied");
    narrator.run(&["verify", "--clusters", "team=payments"], 0, "every cluster can pull");
    narrator.config = original;
    let _ = std::fs::remove_dir_all(&dir);
}

/// Copies the plain files beside `config` into `dir`.
fn copy_siblings(config: &Path, dir: &Path) -> std::io::Result<()> {
    let Some(parent) = config.parent().map(|p| if p.as_os_str().is_empty() { Path::new(".") } else { p }) else {
        return Ok(());
    };
    for entry in std::fs::read_dir(parent)? {
        let path = entry?.path();
        if path.is_file()
            && let Some(name) = path.file_name()
        {
            std::fs::copy(&path, dir.join(name))?;
        }
    }
    Ok(())
}

/// Pods pull through the kubelet identity and a pull Secret, and not beyond a binding.
fn pods(narrator: &mut Narrator, runtime: &tokio::runtime::Runtime, emulator: &acrlink_emulator::Emulator) {
    for (cluster, image, expect) in [
        ("aks-pay-weu", "paymentsabac.azurecr.io/payments/api:2.4.1", "Running"),
        ("aks-dev-01", "vendorimages.azurecr.io/vendor/agent:3.1", "Running"),
        ("aks-pay-weu", "paymentsabac.azurecr.io/research/model:0.1", "ErrImagePull"),
    ] {
        match runtime.block_on(run_pod(emulator, cluster, image, expect == "Running")) {
            Ok(outcome) => {
                let line = format!("{cluster}: {image} → {outcome}");
                if outcome.starts_with(expect) {
                    anstream::println!("{}", style::dim(&line));
                } else {
                    anstream::println!("{}", style::error(&line));
                    narrator.surprises.push(format!("expected {expect}: {line}"));
                }
            }
            Err(e) => narrator.surprises.push(format!("cannot run a pod on {cluster}: {e}")),
        }
    }
}

/// Changes behind acrlink's back: a grant removed, the vendor's admin password renewed.
fn tamper(narrator: &mut Narrator, emulator: &acrlink_emulator::Emulator) {
    match remove_one_managed_grant(emulator) {
        Some(what) => anstream::println!("{}", style::dim(&format!("removed {what}"))),
        None => narrator.surprises.push("found no grant made by acrlink to remove".into()),
    }
    match emulator.state().regenerate_registry_password("vendorimages", "password") {
        // The new password is not shown: it is a secret like any other.
        Ok(_) => anstream::println!(
            "{}",
            style::dim("renewed the admin password of vendorimages: the pull Secrets on the dev clusters are stale")
        ),
        Err(e) => narrator.surprises.push(format!("cannot renew the vendor's admin password: {e}")),
    }
}

/// Stands in for a colleague running `az role assignment delete`: removes the grant acrlink
/// made for aks-dev-02 (the first managed one, whatever the world), straight in the emulator.
fn remove_one_managed_grant(emulator: &acrlink_emulator::Emulator) -> Option<String> {
    let state = emulator.state();
    let mut managed: Vec<_> = state
        .role_assignments()
        .into_iter()
        .filter(|a| acrlink::ownership::assignment_is_managed(a.description.as_deref()))
        .collect();
    managed.sort_by(|a, b| {
        let prefers = |x: &acrlink_emulator::RoleAssignmentView| {
            !x.description.as_deref().unwrap_or_default().contains("aks-dev-02")
        };
        (prefers(a), &a.id).cmp(&(prefers(b), &b.id))
    });
    let victim = managed.into_iter().next()?;
    state.delete_role_assignment(&victim.id)?;
    let cluster = victim
        .description
        .as_deref()
        .and_then(|d| d.rsplit('/').next())
        .unwrap_or("a cluster")
        .trim_end_matches(" pull");
    Some(format!(
        "role assignment {} (AcrPull for {cluster}) from {}",
        victim.name,
        victim.scope.rsplit('/').next().unwrap_or_default()
    ))
}

/// Starts a pod with `image` in the default namespace (the default service account hands it
/// its pull Secrets) and waits for the kubelet's verdict: "Running", or the reason it cannot
/// pull. A pod expected to run gets the kubelet's retries (a fresh grant takes a moment to
/// reach the registry, as on Azure).
async fn run_pod(
    emulator: &acrlink_emulator::Emulator,
    cluster: &str,
    image: &str,
    expect_running: bool,
) -> Result<String, String> {
    use k8s_openapi::api::core::v1::Pod;
    use kube::api::{Api, PostParams};
    let text = emulator.state().kubeconfig(cluster, true).map_err(|e| e.to_string())?;
    let kubeconfig = kube::config::Kubeconfig::from_yaml(&text).map_err(|e| e.to_string())?;
    let config =
        kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default()).await.map_err(|e| e.to_string())?;
    let pods: Api<Pod> = Api::namespaced(kube::Client::try_from(config).map_err(|e| e.to_string())?, "default");
    let name = format!("demo-{}", pods_suffix(image));
    let pod: Pod = serde_json::from_value(serde_json::json!({
        "metadata": {"name": name},
        "spec": {"containers": [{"name": "app", "image": image}]},
    }))
    .map_err(|e| e.to_string())?;
    pods.create(&PostParams::default(), &pod).await.map_err(|e| e.to_string())?;
    let mut last = String::from("still pending after 10 s");
    for _ in 0..100 {
        let status = pods.get(&name).await.map_err(|e| e.to_string())?.status.unwrap_or_default();
        if status.phase.as_deref() == Some("Running") {
            return Ok("Running".into());
        }
        let waiting = status.container_statuses.unwrap_or_default().into_iter().find_map(|c| c.state?.waiting);
        let failed = waiting.filter(|w| w.reason.as_deref().is_some_and(|r| r.contains("ImagePull")));
        if let Some(waiting) = failed {
            let message = waiting.message.unwrap_or_default();
            let why = if message.contains("401") { "401 Unauthorized" } else { "not found" };
            last = format!("{} ({why})", waiting.reason.unwrap_or_default());
            if !expect_running {
                return Ok(last);
            }
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    Ok(last)
}

fn pods_suffix(image: &str) -> String {
    let name = image.rsplit('/').next().unwrap_or(image);
    name.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '-' }).collect()
}
