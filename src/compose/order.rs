//! The order services start in: each after what it `depends_on`, a cycle named with
//! its services, a dependency on a service the project lacks refused.

use std::collections::BTreeSet;

use super::model::Project;
use super::ComposeError;

/// Checks every dependency names a service, and that they form no cycle.
pub fn check(project: &Project) -> Result<(), ComposeError> {
    for (name, service) in &project.services {
        for (dependency, wanted) in &service.depends_on {
            if !project.services.contains_key(dependency) && wanted.required {
                return Err(ComposeError::UnknownDependency {
                    service: name.clone(),
                    dependency: dependency.clone(),
                    disabled: project.disabled.contains_key(dependency),
                });
            }
        }
    }
    start_order(project, project.services.keys().cloned().collect()).map(|_| ())
}

/// The services of `wanted` and all they depend on, each after its dependencies
/// (alphabetical where the order is free).
pub fn start_order(
    project: &Project,
    wanted: BTreeSet<String>,
) -> Result<Vec<String>, ComposeError> {
    let mut order = Vec::new();
    let mut done = BTreeSet::new();
    for name in &wanted {
        visit(project, name, &mut Vec::new(), &mut done, &mut order)?;
    }
    Ok(order)
}

fn visit(
    project: &Project,
    name: &str,
    stack: &mut Vec<String>,
    done: &mut BTreeSet<String>,
    order: &mut Vec<String>,
) -> Result<(), ComposeError> {
    if done.contains(name) {
        return Ok(());
    }
    if let Some(at) = stack.iter().position(|s| s == name) {
        let mut cycle: Vec<String> = stack[at..].to_vec();
        cycle.push(name.to_string());
        return Err(ComposeError::Cycle(cycle.join(" -> ")));
    }
    let Some(service) = project.services.get(name) else {
        return Ok(());
    };
    stack.push(name.to_string());
    for dependency in service.depends_on.keys() {
        visit(project, dependency, stack, done, order)?;
    }
    stack.pop();
    done.insert(name.to_string());
    order.push(name.to_string());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compose::model::{Dependency, Service};

    fn project(edges: &[(&str, &[&str])]) -> Project {
        let mut project = Project::default();
        for (name, deps) in edges {
            let mut service = Service {
                image: Some("busybox".into()),
                ..Service::default()
            };
            for dep in *deps {
                service.depends_on.insert(
                    dep.to_string(),
                    Dependency {
                        condition: "service_started".into(),
                        required: true,
                        restart: false,
                    },
                );
            }
            project.services.insert(name.to_string(), service);
        }
        project
    }

    #[test]
    fn dependencies_first() {
        let p = project(&[("web", &["db", "cache"]), ("db", &[]), ("cache", &["db"])]);
        assert_eq!(
            start_order(&p, ["web".to_string()].into()).unwrap(),
            ["db", "cache", "web"]
        );
    }

    #[test]
    fn a_cycle_is_named() {
        let p = project(&[("a", &["b"]), ("b", &["c"]), ("c", &["a"])]);
        assert_eq!(
            check(&p).unwrap_err().to_string(),
            "depends_on has a cycle: a -> b -> c -> a"
        );
    }
}
