//! Cluster profiles: node types, partitions/constraints, launcher, modules
//! and scratch conventions per site, as data. The built-in profiles are the
//! TOML files in `clusters/`, embedded at build time; `--profile FILE` (or
//! `CHUNKWISE_CLUSTERS=DIR`) loads a user's own. Adding a cluster is adding
//! one file.

use crate::error::CwError;
use serde::{Deserialize, Serialize};

/// One node type of a cluster.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct NodeType {
    /// Name used with `--node`.
    pub name: String,
    /// Physical cores per node.
    pub cores: u32,
    /// Memory per node in GiB (2^30 bytes).
    pub mem_gib: u32,
    /// Slurm partition (`-p`), if the site selects node types that way.
    #[serde(default)]
    pub partition: Option<String>,
    /// Slurm constraint (`-C`), if the site selects node types that way.
    #[serde(default)]
    pub constraint: Option<String>,
    /// The node type is only given out whole (`--exclusive`).
    #[serde(default)]
    pub exclusive: bool,
}

impl NodeType {
    /// Memory per core in MiB (node RAM ÷ cores), the per-core share jobs are charged by.
    pub fn mem_per_core_mib(&self) -> u64 {
        self.mem_gib as u64 * 1024 / self.cores as u64
    }
}

/// A cluster profile.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Cluster {
    /// Profile name (`--cluster`).
    pub name: String,
    /// Centre.
    pub site: String,
    /// One line about the cluster's conventions.
    pub description: String,
    /// How project accounts look (`-A`).
    pub account_pattern: String,
    /// Longest job allowed, hours.
    pub max_time_hours: u32,
    /// MPI launcher command (`srun`, `mpirun -bind-to core`, `mpprun`).
    pub launcher: String,
    /// Name of the environment script `modules/<name>.sh`.
    pub modules: String,
    /// Environment variable naming node-local scratch, empty if none.
    #[serde(default)]
    pub scratch_var: String,
    /// Node type used when none is asked for.
    pub default_node: String,
    /// Add `--threads-per-core=1` (sites where a Slurm CPU is a hardware thread).
    #[serde(default)]
    pub threads_per_core_1: bool,
    /// Assumed read bandwidth of one node from project storage, GB/s (10^9 B/s).
    pub node_read_gbs: f64,
    /// Assumed aggregate read bandwidth ceiling of the file system, GB/s.
    pub fs_read_gbs: f64,
    /// Node types.
    #[serde(rename = "node")]
    pub nodes: Vec<NodeType>,
}

/// The built-in profiles (file name, TOML text).
pub const BUILTIN: [(&str, &str); 5] = [
    (
        "kebnekaise",
        include_str!("../../../clusters/kebnekaise.toml"),
    ),
    ("cosmos", include_str!("../../../clusters/cosmos.toml")),
    ("pelle", include_str!("../../../clusters/pelle.toml")),
    (
        "tetralith",
        include_str!("../../../clusters/tetralith.toml"),
    ),
    ("local", include_str!("../../../clusters/local.toml")),
];

impl Cluster {
    /// Parse and check a profile.
    pub fn from_toml(text: &str, origin: &str) -> Result<Cluster, CwError> {
        let c: Cluster = toml::from_str(text)
            .map_err(|e| CwError::Parse(format!("cluster profile {origin}: {e}")))?;
        if c.nodes.is_empty() || c.nodes.iter().any(|n| n.cores == 0 || n.mem_gib == 0) {
            return Err(CwError::Parse(format!(
                "cluster profile {origin}: every node type needs cores and mem_gib > 0"
            )));
        }
        if c.node(&c.default_node).is_none() {
            return Err(CwError::Parse(format!(
                "cluster profile {origin}: default_node '{}' is not a node type",
                c.default_node
            )));
        }
        if !(c.node_read_gbs > 0.0 && c.fs_read_gbs > 0.0) {
            return Err(CwError::Parse(format!(
                "cluster profile {origin}: bandwidths must be positive"
            )));
        }
        Ok(c)
    }

    /// Load `name`: a path to a TOML file, a profile in `$CHUNKWISE_CLUSTERS`, or a built-in.
    pub fn load(name: &str) -> Result<Cluster, CwError> {
        if name.ends_with(".toml") {
            let text = std::fs::read_to_string(name).map_err(|e| {
                CwError::Input(format!("cannot read cluster profile '{name}': {e}"))
            })?;
            return Cluster::from_toml(&text, name);
        }
        if let Ok(dir) = std::env::var("CHUNKWISE_CLUSTERS") {
            let p = std::path::Path::new(&dir).join(format!("{name}.toml"));
            if let Ok(text) = std::fs::read_to_string(&p) {
                return Cluster::from_toml(&text, &p.display().to_string());
            }
        }
        let (_, text) = BUILTIN.iter().find(|(n, _)| *n == name).ok_or_else(|| {
            let names: Vec<&str> = BUILTIN.iter().map(|b| b.0).collect();
            CwError::Parse(format!(
                "unknown --cluster '{name}': choose {} or give a .toml profile",
                names.join(", ")
            ))
        })?;
        Cluster::from_toml(text, name)
    }

    /// The node type called `name`.
    pub fn node(&self, name: &str) -> Option<&NodeType> {
        self.nodes.iter().find(|n| n.name == name)
    }

    /// The node type `name`, or the default one; error names the choices.
    pub fn node_or_default(&self, name: Option<&str>) -> Result<&NodeType, CwError> {
        let want = name.unwrap_or(&self.default_node);
        self.node(want).ok_or_else(|| {
            let names: Vec<&str> = self.nodes.iter().map(|n| n.name.as_str()).collect();
            CwError::Parse(format!(
                "cluster {} has no node type '{want}': choose {}",
                self.name,
                names.join(", ")
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtins_parse_and_have_their_facts() {
        for (name, _) in BUILTIN {
            let c = Cluster::load(name).unwrap();
            assert_eq!(c.name, name);
        }
        let t = Cluster::load("tetralith").unwrap();
        assert_eq!(t.node("thin").unwrap().mem_per_core_mib(), 96 * 1024 / 32);
        assert_eq!(t.launcher, "mpprun");
        let k = Cluster::load("kebnekaise").unwrap();
        assert_eq!(k.node("zen3").unwrap().constraint.as_deref(), Some("zen3"));
        assert!(Cluster::load("pelle").unwrap().threads_per_core_1);
        assert!(
            Cluster::load("nowhere")
                .unwrap_err()
                .to_string()
                .contains("kebnekaise")
        );
    }

    #[test]
    fn bad_profiles_are_rejected() {
        let good = BUILTIN[4].1;
        assert!(Cluster::from_toml(&good.replace("cores = 4", "cores = 0"), "x").is_err());
        assert!(
            Cluster::from_toml(
                &good.replace("default_node = \"local\"", "default_node = \"gpu\""),
                "x"
            )
            .is_err()
        );
        assert!(Cluster::from_toml(&format!("{good}\nbogus = 1\n"), "x").is_err());
    }
}
