//! Users and groups of a root filesystem: `USER name`, `name:group`, `uid:gid`, and
//! supplementary groups, resolved from its `/etc/passwd` and `/etc/group` as Docker does.

use std::path::Path;

/// Who a process runs as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub uid: u32,
    pub gid: u32,
    pub additional_gids: Vec<u32>,
    /// The home directory from passwd, if the user is there.
    pub home: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UserError {
    #[error("unable to find user {0}: no matching entries in passwd file")]
    NoUser(String),
    #[error("unable to find group {0}: no matching entries in group file")]
    NoGroup(String),
    #[error("invalid user {0:?}: expected NAME, UID, NAME:GROUP or UID:GID")]
    Invalid(String),
}

struct PasswdEntry {
    name: String,
    uid: u32,
    gid: u32,
    home: String,
}

struct GroupEntry {
    name: String,
    gid: u32,
    members: Vec<String>,
}

fn passwd(text: &str) -> Vec<PasswdEntry> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|line| {
            let f: Vec<&str> = line.split(':').collect();
            Some(PasswdEntry {
                name: f.first()?.to_string(),
                uid: f.get(2)?.parse().ok()?,
                gid: f.get(3)?.parse().ok()?,
                home: f.get(5).unwrap_or(&"").to_string(),
            })
        })
        .collect()
}

fn groups(text: &str) -> Vec<GroupEntry> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|line| {
            let f: Vec<&str> = line.split(':').collect();
            Some(GroupEntry {
                name: f.first()?.to_string(),
                gid: f.get(2)?.parse().ok()?,
                members: f
                    .get(3)
                    .map(|m| {
                        m.split(',')
                            .filter(|s| !s.is_empty())
                            .map(str::to_string)
                            .collect()
                    })
                    .unwrap_or_default(),
            })
        })
        .collect()
}

/// Resolves `spec` (empty means root) against passwd and group file contents.
/// A numeric user not in passwd is allowed; a name must be there.
pub fn resolve(spec: &str, passwd_text: &str, group_text: &str) -> Result<Identity, UserError> {
    let (user, group) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    if user.is_empty() && group.is_some() {
        return Err(UserError::Invalid(spec.into()));
    }
    let users = passwd(passwd_text);
    let all_groups = groups(group_text);
    let user = if user.is_empty() { "0" } else { user };
    let found = match user.parse::<u32>() {
        Ok(uid) => users.iter().find(|u| u.uid == uid),
        Err(_) => Some(
            users
                .iter()
                .find(|u| u.name == user)
                .ok_or_else(|| UserError::NoUser(user.into()))?,
        ),
    };
    let uid = match (user.parse::<u32>(), found) {
        (Ok(uid), _) => uid,
        (Err(_), Some(entry)) => entry.uid,
        (Err(_), None) => return Err(UserError::NoUser(user.into())),
    };
    let gid = match group {
        Some(g) if !g.is_empty() => match g.parse::<u32>() {
            Ok(gid) => gid,
            Err(_) => all_groups
                .iter()
                .find(|e| e.name == g)
                .map(|e| e.gid)
                .ok_or_else(|| UserError::NoGroup(g.into()))?,
        },
        Some(_) => return Err(UserError::Invalid(spec.into())),
        None => found.map_or(0, |e| e.gid),
    };
    // Supplementary groups only when the group was not given explicitly, as Docker does.
    let additional_gids = match (group, found) {
        (None, Some(entry)) => {
            let mut gids: Vec<u32> = all_groups
                .iter()
                .filter(|g| g.members.contains(&entry.name) && g.gid != gid)
                .map(|g| g.gid)
                .collect();
            gids.sort_unstable();
            gids.dedup();
            gids
        }
        _ => Vec::new(),
    };
    Ok(Identity {
        uid,
        gid,
        additional_gids,
        home: found.map(|e| e.home.clone()),
    })
}

/// `--group-add` entries as gids: numbers as they are, names from `<root>/etc/group`.
pub fn group_ids_in(root: &Path, names: &[String]) -> Result<Vec<u32>, UserError> {
    let text = std::fs::read_to_string(root.join("etc/group")).unwrap_or_default();
    let all = groups(&text);
    names
        .iter()
        .map(|name| match name.parse::<u32>() {
            Ok(gid) => Ok(gid),
            Err(_) => all
                .iter()
                .find(|g| g.name == *name)
                .map(|g| g.gid)
                .ok_or_else(|| UserError::NoGroup(name.clone())),
        })
        .collect()
}

/// Resolves `spec` against `<root>/etc/passwd` and `<root>/etc/group` (missing files are
/// empty).
pub fn resolve_in(root: &Path, spec: &str) -> Result<Identity, UserError> {
    let read =
        |name: &str| std::fs::read_to_string(root.join("etc").join(name)).unwrap_or_default();
    resolve(spec, &read("passwd"), &read("group"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\nbin:x:2:2:bin:/bin:/bin/false\napp:x:1000:1000::/home/app:/bin/sh\n";
    const GROUP: &str = "root:x:0:\nbin:x:2:\napp:x:1000:\nwheel:x:10:app,other\naudio:x:29:app\n";

    #[test]
    fn names_numbers_and_groups() {
        let id = resolve("app", PASSWD, GROUP).unwrap();
        assert_eq!(
            (id.uid, id.gid, id.additional_gids.clone()),
            (1000, 1000, vec![10, 29])
        );
        assert_eq!(id.home.as_deref(), Some("/home/app"));
        let id = resolve("app:wheel", PASSWD, GROUP).unwrap();
        assert_eq!((id.uid, id.gid, id.additional_gids), (1000, 10, vec![]));
        let id = resolve("4242:4343", PASSWD, GROUP).unwrap();
        assert_eq!((id.uid, id.gid), (4242, 4343));
        let id = resolve("1000", PASSWD, GROUP).unwrap();
        assert_eq!((id.uid, id.gid), (1000, 1000));
        assert_eq!(resolve("", PASSWD, GROUP).unwrap().uid, 0);
        assert_eq!(
            resolve("nobody", PASSWD, GROUP),
            Err(UserError::NoUser("nobody".into()))
        );
        assert_eq!(
            resolve("app:nogroup", PASSWD, GROUP),
            Err(UserError::NoGroup("nogroup".into()))
        );
    }
}
