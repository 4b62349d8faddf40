//! The container settings of a service ([`ContainerSettings`]) read from
//! the Compose tree, with Compose's units and shapes (byte sizes, CPU
//! fractions, durations, lists or maps) turned into what the engine takes.
//! Only the Docker runtime uses them; validation rejects or warns about
//! what they cannot carry.

use super::compose::{ComposeFile, Node};
use super::model::ProjectError;
use super::runtime::ContainerSettings;
pub(super) use berth_compose::units::{
    pairs, parse_bytes, parse_cpus, parse_expose, parse_extra_hosts, parse_int, parse_micros,
    parse_tmpfs, parse_ulimits, scalar, strings,
};
use std::collections::BTreeMap;

/// What a service's settings may refer to outside its own entry.
pub(super) struct Context<'a> {
    /// The service's name.
    pub service: &'a str,
    /// The project namespace.
    pub namespace: &'a str,
    /// Container names of the project's services, by service.
    pub container_names: &'a BTreeMap<String, String>,
    /// Aliases other services give this one through `links`.
    pub link_aliases: &'a [String],
    /// The networks the service joins, namespaced.
    pub networks: &'a [String],
}

/// An error at `<service>.<key>`.
fn err(ctx: &Context<'_>, key: &str, why: impl std::fmt::Display) -> ProjectError {
    ProjectError::InvalidArgument(format!("{}.{key}: {why}", ctx.service))
}

/// The container settings of one service. `node` is its entry in the
/// tree; volumes, secrets and configs are planned with the mounts.
pub(super) fn container_settings(
    node: &Node,
    ctx: &Context<'_>,
) -> Result<ContainerSettings, ProjectError> {
    let mut c = ContainerSettings::default();
    let Node::Map(entries) = node else {
        return Ok(c);
    };
    let string = |key: &str, v: &Node| scalar(v).ok_or_else(|| err(ctx, key, "expected a string"));
    let list = |key: &str, v: &Node| strings(v).map_err(|e| err(ctx, key, e));
    let bytes = |key: &str, v: &Node| parse_bytes(v).map_err(|e| err(ctx, key, e));
    let int = |key: &str, v: &Node| parse_int(v).map_err(|e| err(ctx, key, e));
    let micros = |key: &str, v: &Node| parse_micros(v).map_err(|e| err(ctx, key, e));
    // An interpolated value (`read_only: ${RO}`) arrives as a string; it is
    // cast as docker compose casts it.
    let flag = |key: &str, v: &Node| {
        berth_compose::units::parse_bool(v).ok_or_else(|| err(ctx, key, "expected true or false"))
    };
    // `service:X` becomes the container of X; validation rejected
    // `container:` and `host`.
    let join = |key: &str, v: &Node| -> Result<String, ProjectError> {
        let mode = string(key, v)?;
        match mode.strip_prefix("service:") {
            Some(s) => ctx
                .container_names
                .get(s)
                .map(|n| format!("container:{n}"))
                .ok_or_else(|| err(ctx, key, format!("service `{s}` is not defined"))),
            None => Ok(mode),
        }
    };
    for (key, v) in entries {
        let key = key.as_str();
        match key {
            "labels" => c
                .labels
                .extend(pairs(v, '=').map_err(|e| err(ctx, key, e))?),
            "hostname" => c.hostname = Some(string(key, v)?),
            "domainname" => c.domainname = Some(string(key, v)?),
            "dns" => c.dns = list(key, v)?,
            "dns_search" => c.dns_search = list(key, v)?,
            "dns_opt" => c.dns_opt = list(key, v)?,
            "extra_hosts" => c.extra_hosts = parse_extra_hosts(v).map_err(|e| err(ctx, key, e))?,
            "network_mode" => c.network_mode = Some(join(key, v)?),
            "expose" => {
                for p in list(key, v)? {
                    c.expose
                        .extend(parse_expose(&p).map_err(|e| err(ctx, key, e))?);
                }
            }
            "tmpfs" => c
                .tmpfs
                .extend(parse_tmpfs(v).map_err(|e| err(ctx, key, e))?),
            "volumes_from" => {
                for entry in list(key, v)? {
                    let (svc, mode) = match entry.split_once(':') {
                        Some((s, m)) => (s, Some(m)),
                        None => (entry.as_str(), None),
                    };
                    let name = ctx
                        .container_names
                        .get(svc)
                        .ok_or_else(|| err(ctx, key, format!("service `{svc}` is not defined")))?;
                    c.volumes_from.push(match mode {
                        Some(m) => format!("{name}:{m}"),
                        None => name.clone(),
                    });
                }
            }
            "read_only" => c.read_only = flag(key, v)?,
            "shm_size" => c.shm_size = Some(bytes(key, v)?),
            "ulimits" => c.ulimits = parse_ulimits(v).map_err(|e| err(ctx, key, e))?,
            "sysctls" => {
                c.sysctls = pairs(v, '=')
                    .map_err(|e| err(ctx, key, e))?
                    .into_iter()
                    .collect()
            }
            "storage_opt" => {
                c.storage_opt = pairs(v, '=')
                    .map_err(|e| err(ctx, key, e))?
                    .into_iter()
                    .collect()
            }
            "mem_limit" => c.memory = Some(bytes(key, v)?),
            "mem_reservation" => c.memory_reservation = Some(bytes(key, v)?),
            // -1 is Compose's (and Docker's) "unlimited swap".
            "memswap_limit" => {
                c.memory_swap = Some(match v {
                    Node::Int(-1) => -1,
                    Node::Str(s) if s.trim() == "-1" => -1,
                    v => bytes(key, v)?,
                })
            }
            "mem_swappiness" => c.memory_swappiness = Some(int(key, v)?),
            "cpus" => c.nano_cpus = Some(parse_cpus(v).map_err(|e| err(ctx, key, e))?),
            "cpu_shares" => c.cpu_shares = Some(int(key, v)?),
            "cpu_period" => c.cpu_period = Some(micros(key, v)?),
            "cpu_quota" => c.cpu_quota = Some(micros(key, v)?),
            "cpu_rt_runtime" => c.cpu_rt_runtime = Some(micros(key, v)?),
            "cpu_rt_period" => c.cpu_rt_period = Some(micros(key, v)?),
            "cpuset" => c.cpuset = Some(string(key, v)?),
            "pids_limit" => c.pids_limit = Some(int(key, v)?),
            "blkio_config" => {
                if let Some(w) = v.get("weight") {
                    let w = int("blkio_config.weight", w)?;
                    c.blkio_weight = Some(u16::try_from(w).map_err(|_| {
                        err(ctx, "blkio_config.weight", format!("`{w}` is out of range"))
                    })?);
                }
            }
            "oom_kill_disable" => c.oom_kill_disable = Some(flag(key, v)?),
            "oom_score_adj" => c.oom_score_adj = Some(int(key, v)?),
            "cap_add" => c.cap_add = list(key, v)?,
            "cap_drop" => c.cap_drop = list(key, v)?,
            "security_opt" => c.security_opt = list(key, v)?,
            "group_add" => c.group_add = list(key, v)?,
            "tty" => c.tty = flag(key, v)?,
            "stdin_open" => c.stdin_open = flag(key, v)?,
            "platform" => c.platform = Some(string(key, v)?),
            "runtime" => c.runtime = Some(string(key, v)?),
            "cgroup_parent" => c.cgroup_parent = Some(string(key, v)?),
            "pid" => c.pid = Some(join(key, v)?),
            "ipc" => c.ipc = Some(join(key, v)?),
            "uts" => c.uts = Some(string(key, v)?),
            "userns_mode" => c.userns_mode = Some(string(key, v)?),
            "cgroup" => match v.as_str() {
                Some("private") => c.cgroup_private = true,
                _ => return Err(err(ctx, key, format!("`{v}` is not `private`"))),
            },
            "networks" => {
                if let Node::Map(nets) = v {
                    for (net, opts) in nets {
                        if let Some(a) = opts.get("aliases") {
                            let key = format!("networks.{net}.aliases");
                            c.network_aliases
                                .entry(format!("{}_{net}", ctx.namespace))
                                .or_default()
                                .extend(list(&key, a)?);
                        }
                    }
                }
            }
            "deploy" => deploy_resources(v, ctx, &mut c)?,
            _ => {}
        }
    }
    if !ctx.link_aliases.is_empty() {
        for net in ctx.networks {
            let aliases = c.network_aliases.entry(net.clone()).or_default();
            for a in ctx.link_aliases {
                if !aliases.contains(a) {
                    aliases.push(a.clone());
                }
            }
        }
    }
    Ok(c)
}

/// Whether the plan can read `key: value` of service `service` in
/// `file`; the error is the plan's, without the field prefix (validation
/// reports the field as its path).
pub(super) fn check(
    file: &ComposeFile,
    service: &str,
    key: &str,
    value: &Node,
) -> Result<(), String> {
    let names: BTreeMap<String, String> = file
        .services
        .keys()
        .map(|s| (s.to_owned(), s.to_owned()))
        .collect();
    let ctx = Context {
        service,
        namespace: "",
        container_names: &names,
        link_aliases: &[],
        networks: &[],
    };
    let node = Node::Map(vec![(key.to_owned(), value.clone())]);
    container_settings(&node, &ctx).map(drop).map_err(|e| {
        let msg = e.to_string();
        let prefix = format!("{service}.{key}: ");
        msg.strip_prefix(&prefix).map(str::to_owned).unwrap_or(msg)
    })
}

/// `deploy.resources`: limits (`cpus`, `memory`, `pids`) and the memory
/// reservation. They take precedence over `cpus`, `mem_limit`, ... as
/// they are the newer spelling.
fn deploy_resources(
    deploy: &Node,
    ctx: &Context<'_>,
    c: &mut ContainerSettings,
) -> Result<(), ProjectError> {
    let Some(resources) = deploy.get("resources") else {
        return Ok(());
    };
    if let Some(limits) = resources.get("limits") {
        if let Some(v) = limits.get("cpus") {
            c.nano_cpus =
                Some(parse_cpus(v).map_err(|e| err(ctx, "deploy.resources.limits.cpus", e))?);
        }
        if let Some(v) = limits.get("memory") {
            c.memory =
                Some(parse_bytes(v).map_err(|e| err(ctx, "deploy.resources.limits.memory", e))?);
        }
        if let Some(v) = limits.get("pids") {
            c.pids_limit =
                Some(parse_int(v).map_err(|e| err(ctx, "deploy.resources.limits.pids", e))?);
        }
    }
    if let Some(v) = resources.get("reservations").and_then(|r| r.get("memory")) {
        c.memory_reservation =
            Some(parse_bytes(v).map_err(|e| err(ctx, "deploy.resources.reservations.memory", e))?);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::projects::compose::parse;

    fn settings(yaml: &str) -> Result<ContainerSettings, ProjectError> {
        let (_, tree) = parse(yaml.as_bytes()).expect("parses");
        let node = tree
            .get("services")
            .and_then(|s| s.get("web"))
            .expect("web")
            .clone();
        let names = BTreeMap::from([
            ("web".to_string(), "berth-p-web".to_string()),
            ("db".to_string(), "berth-p-db".to_string()),
        ]);
        let aliases = vec!["database".to_string()];
        let networks = vec!["berth-p_default".to_string()];
        container_settings(
            &node,
            &Context {
                service: "web",
                namespace: "berth-p",
                container_names: &names,
                link_aliases: &aliases,
                networks: &networks,
            },
        )
    }

    #[test]
    fn byte_sizes_are_binary() {
        let b = |s: &str| parse_bytes(&Node::Str(s.into()));
        assert_eq!(b("512m"), Ok(512 * 1024 * 1024));
        assert_eq!(b("1g"), Ok(1 << 30));
        assert_eq!(b("1GB"), Ok(1 << 30));
        assert_eq!(b("256M"), Ok(256 << 20));
        assert_eq!(b("64k"), Ok(64 << 10));
        assert_eq!(b("1.5g"), Ok(3 << 29));
        assert_eq!(b("100"), Ok(100));
        assert_eq!(b("100b"), Ok(100));
        assert_eq!(parse_bytes(&Node::Int(4096)), Ok(4096));
        assert!(b("lots").is_err());
        assert!(b("12q").is_err());
        assert!(b("-1m").is_err());
        assert!(parse_bytes(&Node::Int(-5)).is_err());
    }

    #[test]
    fn expose_entries_and_ranges() {
        assert_eq!(parse_expose("80"), Ok(vec!["80/tcp".to_string()]));
        assert_eq!(
            parse_expose("53-54/udp"),
            Ok(vec!["53/udp".to_string(), "54/udp".to_string()])
        );
        assert!(parse_expose("http").is_err());
        assert!(parse_expose("9-8").is_err());
        assert!(parse_expose("80/icmp").is_err());
    }

    #[test]
    fn cpus_become_nano_cpus() {
        assert_eq!(parse_cpus(&Node::Float(0.5)), Ok(500_000_000));
        assert_eq!(parse_cpus(&Node::Str("1.25".into())), Ok(1_250_000_000));
        assert_eq!(parse_cpus(&Node::Int(2)), Ok(2_000_000_000));
        assert!(parse_cpus(&Node::Float(0.0)).is_err());
        assert!(parse_cpus(&Node::Str("half".into())).is_err());
    }

    #[test]
    fn shapes_of_lists_and_maps() {
        let s = settings(
            r#"
services:
  web:
    image: x
    labels: ["a=1", "b"]
    extra_hosts: ["db.local:10.0.0.2", "v6=::1", "legacy:::2"]
    tmpfs: /run
    sysctls: ["net.core.somaxconn=1024"]
    ulimits:
      nofile: { soft: 1024, hard: 2048 }
      nproc: 512
    expose: [9100, "53/udp"]
"#,
        )
        .unwrap();
        assert_eq!(
            s.labels,
            BTreeMap::from([("a".into(), "1".into()), ("b".into(), String::new())])
        );
        assert_eq!(s.extra_hosts, ["db.local:10.0.0.2", "v6:::1", "legacy:::2"]);
        assert_eq!(s.tmpfs, BTreeMap::from([("/run".into(), String::new())]));
        assert_eq!(
            s.sysctls,
            BTreeMap::from([("net.core.somaxconn".into(), "1024".into())])
        );
        assert_eq!(
            s.ulimits,
            [("nofile".into(), 1024, 2048), ("nproc".into(), 512, 512)]
        );
        assert_eq!(s.expose, ["9100/tcp", "53/udp"]);

        let s = settings(
            r#"
services:
  web:
    image: x
    labels: { team: shop, tier: 1 }
    extra_hosts: { db.local: 10.0.0.2 }
    tmpfs: ["/tmp:size=64m,mode=1777", /cache]
    sysctls: { net.ipv4.tcp_syncookies: 0 }
"#,
        )
        .unwrap();
        assert_eq!(
            s.labels,
            BTreeMap::from([("team".into(), "shop".into()), ("tier".into(), "1".into())])
        );
        assert_eq!(s.extra_hosts, ["db.local:10.0.0.2"]);
        assert_eq!(
            s.tmpfs,
            BTreeMap::from([
                ("/tmp".into(), "size=64m,mode=1777".into()),
                ("/cache".into(), String::new())
            ])
        );
        assert_eq!(
            s.sysctls,
            BTreeMap::from([("net.ipv4.tcp_syncookies".into(), "0".into())])
        );
    }

    #[test]
    fn resources_and_references() {
        let s = settings(
            r#"
services:
  web:
    image: x
    mem_limit: 512m
    memswap_limit: -1
    cpus: 0.5
    cpu_rt_runtime: 400ms
    cpu_period: 100000
    shm_size: 1g
    pids_limit: 100
    read_only: true
    network_mode: service:db
    volumes_from: ["db:ro"]
    networks:
      default:
        aliases: [www]
    deploy:
      resources:
        limits: { cpus: "1.5", memory: 256M }
        reservations: { memory: 64m }
"#,
        )
        .unwrap();
        // deploy.resources wins over mem_limit and cpus.
        assert_eq!(s.memory, Some(256 << 20));
        assert_eq!(s.nano_cpus, Some(1_500_000_000));
        assert_eq!(s.memory_reservation, Some(64 << 20));
        assert_eq!(s.memory_swap, Some(-1));
        assert_eq!(s.cpu_rt_runtime, Some(400_000));
        assert_eq!(s.cpu_period, Some(100_000));
        assert_eq!(s.shm_size, Some(1 << 30));
        assert_eq!(s.pids_limit, Some(100));
        assert!(s.read_only);
        assert_eq!(s.network_mode.as_deref(), Some("container:berth-p-db"));
        assert_eq!(s.volumes_from, ["berth-p-db:ro"]);
        // Aliases from `networks` and from other services' `links`.
        assert_eq!(
            s.network_aliases,
            BTreeMap::from([(
                "berth-p_default".to_string(),
                vec!["www".to_string(), "database".to_string()]
            )])
        );
    }

    #[test]
    fn errors_name_the_field() {
        let e = settings("services:\n  web:\n    image: x\n    mem_limit: lots\n").unwrap_err();
        assert!(e.to_string().contains("web.mem_limit: `lots`"), "{e}");
        let e = settings("services:\n  web:\n    image: x\n    cpus: none\n").unwrap_err();
        assert!(e.to_string().contains("web.cpus"), "{e}");
        let e = settings("services:\n  web:\n    image: x\n    ulimits: { nofile: { soft: 1 } }\n")
            .unwrap_err();
        assert!(e.to_string().contains("web.ulimits: `nofile` needs"), "{e}");
        let e =
            settings("services:\n  web:\n    image: x\n    volumes_from: [nope]\n").unwrap_err();
        assert!(
            e.to_string().contains("web.volumes_from: service `nope`"),
            "{e}"
        );
    }
}
