//! The start order of a project's services (Compose Specification,
//! "depends_on"; and the implicit dependencies of `links`,
//! `network_mode`, `pid`, `ipc` and `volumes_from`).

use std::collections::HashSet;
use std::fmt;

use crate::model::ComposeFile;

/// Why no start order exists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OrderError {
    /// `service` requires `dependency`, which the file does not define.
    UnknownDependency {
        /// The service that names the dependency.
        service: String,
        /// The name it gives, which no service has.
        dependency: String,
    },
    /// The services of a cycle, in dependency order, first one repeated
    /// last (`a -> b -> a`).
    Cycle(Vec<String>),
}

impl fmt::Display for OrderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OrderError::UnknownDependency {
                service,
                dependency,
            } => write!(
                f,
                "service `{service}` depends on `{dependency}`, which is not defined"
            ),
            OrderError::Cycle(c) => write!(f, "dependency cycle: {}", c.join(" -> ")),
        }
    }
}

impl std::error::Error for OrderError {}

/// The order to start services in: layers whose services depend only on
/// earlier layers, so each layer can start in parallel. Within a layer,
/// services keep file order, so the result is stable. Stopping walks the
/// layers backwards. Dependencies are those of [`Service::start_after`](crate::model::Service::start_after);
/// a missing one marked `required: false` is skipped, as Compose does.
pub fn start_order(file: &ComposeFile) -> Result<Vec<Vec<String>>, OrderError> {
    for (name, svc) in &file.services.0 {
        let optional: Vec<String> = svc
            .dependencies()
            .into_iter()
            .filter(|d| !d.required)
            .map(|d| d.service)
            .collect();
        if let Some((dep, _)) = svc.start_after().into_iter().find(|(d, key)| {
            file.services.get(d).is_none() && !(*key == "depends_on" && optional.contains(d))
        }) {
            return Err(OrderError::UnknownDependency {
                service: name.clone(),
                dependency: dep,
            });
        }
    }
    layers(file).map_err(OrderError::Cycle)
}

/// Kahn's algorithm by layers, ignoring dependencies on undefined
/// services; on a cycle, returns one cycle.
pub(crate) fn layers(file: &ComposeFile) -> Result<Vec<Vec<String>>, Vec<String>> {
    let deps: Vec<(&str, Vec<String>)> = file
        .services
        .0
        .iter()
        .map(|(name, svc)| {
            let d = svc
                .start_after()
                .into_iter()
                .map(|(d, _)| d)
                .filter(|d| file.services.get(d).is_some())
                .collect();
            (name.as_str(), d)
        })
        .collect();
    let mut placed: HashSet<&str> = HashSet::new();
    let mut out = Vec::new();
    while placed.len() < deps.len() {
        let layer: Vec<&str> = deps
            .iter()
            .filter(|(n, d)| !placed.contains(n) && d.iter().all(|d| placed.contains(d.as_str())))
            .map(|(n, _)| *n)
            .collect();
        if layer.is_empty() {
            return Err(find_cycle(&deps, &placed));
        }
        placed.extend(layer.iter().copied());
        out.push(layer.into_iter().map(str::to_owned).collect());
    }
    Ok(out)
}

/// Every unplaced service has an unplaced dependency, so following first
/// unplaced dependencies from the first unplaced service must revisit one.
fn find_cycle(deps: &[(&str, Vec<String>)], placed: &HashSet<&str>) -> Vec<String> {
    let next = |n: &str| -> String {
        let (_, d) = deps.iter().find(|(m, _)| *m == n).expect("known service");
        d.iter()
            .find(|d| !placed.contains(d.as_str()))
            .expect("an unplaced service has an unplaced dependency")
            .clone()
    };
    let start = deps
        .iter()
        .find(|(n, _)| !placed.contains(n))
        .expect("a service is unplaced")
        .0;
    let mut path = vec![start.to_owned()];
    loop {
        let n = next(path.last().expect("non-empty"));
        if let Some(i) = path.iter().position(|p| *p == n) {
            let mut cycle = path.split_off(i);
            cycle.push(n);
            return cycle;
        }
        path.push(n);
    }
}
