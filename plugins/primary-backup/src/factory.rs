//! The registry's entry point: `policy = "primary-backup"` and the
//! `[primary_backup]` section.

use replab_api::{ConfigError, PolicyContext, PolicyFactory, Recovered, ReplicationPolicy};

use crate::config::{Mode, PrimaryBackupConfig};
use crate::node::PrimaryBackup;

/// The configuration section. Unlike Raft's and the leaderless plugin's,
/// it is not [`PolicyFactory::NAME`]: a TOML section is named with an
/// underscore, the policy with a hyphen.
pub const SECTION: &str = "primary_backup";

pub struct PrimaryBackupFactory;

impl PolicyFactory for PrimaryBackupFactory {
    const NAME: &'static str = "primary-backup";

    const SECTION: &'static str = SECTION;

    type Config = PrimaryBackupConfig;

    fn validate(config: &PrimaryBackupConfig, members: usize) -> Result<(), ConfigError> {
        config.validate(members)
    }

    fn describe(config: &PrimaryBackupConfig, members: usize) -> String {
        let copies = config.ack_copies(members);
        let cost = match config.mode {
            Mode::Async => "a failover can discard acknowledged writes",
            Mode::Sync => "writes stall while any member is down",
            Mode::Quorum => "acknowledged writes survive any minority of failures",
        };
        format!(
            "primary-backup on {members} members, {} mode: a write is acknowledged once durable on {copies} of them \
             ({cost}); a takeover needs {} promises",
            config.mode,
            members / 2 + 1
        )
    }

    fn build(ctx: PolicyContext, config: PrimaryBackupConfig, recovered: Recovered) -> Box<dyn ReplicationPolicy> {
        Box::new(PrimaryBackup::new(ctx, config, recovered))
    }
}
