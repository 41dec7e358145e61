//! A private ZooKeeper for tests: Debian's `zookeeper` package, run as
//! `ZooKeeperServerMain` on a free loopback port with its own data folder,
//! stopped (and its folder removed) when dropped. `scripts/zookeeper.sh
//! install` installs the package.
//!
//! Its data is thrown away, so it runs with `forceSync=no`: with fsync on, a
//! busy disk can hold a session's creation (a logged transaction) past a
//! client's connection timeout. Its log is kept in the folder and printed
//! when a test panics while it runs, so a ZooKeeper-side stall is visible.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Where Debian puts the server's jar; `ZOOKEEPER_JAR` overrides it.
const DEBIAN_JAR: &str = "/usr/share/java/zookeeper.jar";

pub struct ZooKeeper {
    pub port: u16,
    child: Child,
    dir: PathBuf,
}

impl ZooKeeper {
    /// Starts a server on a free port and waits until it answers `ruok`.
    pub fn start() -> anyhow::Result<ZooKeeper> {
        Self::start_on(0)
    }

    /// Starts a server on `port` (0: a free one).
    pub fn start_on(port: u16) -> anyhow::Result<ZooKeeper> {
        let jar = std::env::var("ZOOKEEPER_JAR").unwrap_or_else(|_| DEBIAN_JAR.to_string());
        anyhow::ensure!(
            std::path::Path::new(&jar).exists(),
            "ZooKeeper is not installed ({jar} is missing): run `scripts/zookeeper.sh install`"
        );
        let port = match port {
            0 => std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port(),
            port => {
                // Fail now, clearly, rather than after ZooKeeper's own timeout.
                std::net::TcpListener::bind(("127.0.0.1", port))
                    .map_err(|e| anyhow::anyhow!("127.0.0.1:{port} is taken ({e}); is another ZooKeeper running?"))?;
                port
            }
        };
        let dir = std::env::temp_dir().join(format!("rmq-openmldb-zk-{}-{port}", std::process::id()));
        std::fs::create_dir_all(dir.join("data"))?;
        let config = dir.join("zoo.cfg");
        std::fs::write(
            &config,
            format!(
                "tickTime=500\ndataDir={}\nclientPort={port}\nclientPortAddress=127.0.0.1\n\
                 admin.enableServer=false\n4lw.commands.whitelist=ruok\nmaxSessionTimeout=60000\n\
                 forceSync=no\n",
                dir.join("data").display()
            ),
        )?;
        let log = std::fs::File::create(dir.join("zookeeper.log"))?;
        let child = Command::new("java")
            .args(["-Xmx256m", "-cp", &jar, "org.apache.zookeeper.server.ZooKeeperServerMain"])
            .arg(&config)
            .stdout(Stdio::from(log.try_clone()?))
            .stderr(Stdio::from(log))
            .spawn()?;
        let zookeeper = ZooKeeper { port, child, dir };
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if zookeeper.ruok() {
                return Ok(zookeeper);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        anyhow::bail!(
            "ZooKeeper did not answer on 127.0.0.1:{port} within 30 s; its log ends:\n{}",
            zookeeper.log_tail()
        )
    }

    /// The last lines of the server's log.
    pub fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.dir.join("zookeeper.log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }

    pub fn hosts(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn ruok(&self) -> bool {
        use std::io::{Read, Write};
        let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", self.port)) else { return false };
        let _ = stream.set_read_timeout(Some(Duration::from_secs(1)));
        let mut answer = [0u8; 4];
        stream.write_all(b"ruok").is_ok() && stream.read_exact(&mut answer).is_ok() && &answer == b"imok"
    }
}

impl Drop for ZooKeeper {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("ZooKeeper 127.0.0.1:{} log, last lines:\n{}", self.port, self.log_tail());
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
