//! The deployable binary: it links glibc's own libraries only (libpq and OpenSSL are built
//! in), and it serves from the container image's minimal root filesystem, assembled by
//! `deploy/rootfs.sh`, as the non-root user of the image.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::helpers::{KillOnDrop, skip_or_fail};

const BINARY: &str = env!("CARGO_BIN_EXE_gatehouse");

/// glibc's libraries, the kernel's vDSO, and GCC's unwinder.
fn is_glibcs(name: &str) -> bool {
    name.starts_with("linux-vdso.so")
        || name.contains("ld-linux")
        || [
            "libc.so.6",
            "libm.so.6",
            "libpthread.so.0",
            "libdl.so.2",
            "librt.so.1",
            "libgcc_s.so.1",
        ]
        .contains(&name)
}

#[test]
fn the_binary_needs_only_glibcs_own_libraries() {
    let out = Command::new("ldd").arg(BINARY).output().expect("ldd runs");
    let listed = String::from_utf8_lossy(&out.stdout);
    let names: Vec<&str> = listed
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .map(|first| first.rsplit('/').next().unwrap_or(first))
        .collect();
    assert!(names.contains(&"libc.so.6"), "ldd read it: {listed}");
    let others: Vec<&&str> = names.iter().filter(|n| !is_glibcs(n)).collect();
    assert!(
        others.is_empty(),
        "the binary links more than glibc: {others:?}\n{listed}"
    );
}

#[test]
fn the_binary_serves_from_the_images_minimal_root_filesystem() {
    // SAFETY: geteuid has no preconditions.
    let chroot = ["/usr/sbin/chroot", "/usr/bin/chroot", "/sbin/chroot"]
        .into_iter()
        .find(|p| Path::new(p).exists());
    let (Some(chroot), 0) = (chroot, unsafe { libc::geteuid() }) else {
        skip_or_fail(
            "minimal root filesystem test",
            "chroot needs root",
            "GATEHOUSE_REQUIRE_ROOT",
        );
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/rootfs.sh");
    let built = Command::new("bash")
        .arg(&script)
        .arg(BINARY)
        .arg(&root)
        .output()
        .unwrap();
    assert!(built.status.success(), "{built:?}");
    // Nothing but the binary, the libraries it names, certificates and two small files.
    let mut files = 0;
    let mut stack = vec![root.clone()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap().flatten() {
            if entry.file_type().unwrap().is_dir() {
                stack.push(entry.path());
            } else {
                files += 1;
            }
        }
    }
    assert!(files <= 12, "{files} files in the root filesystem");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let server = Command::new(chroot)
        .arg("--userspec=65532:65532")
        .arg(&root)
        .arg("/usr/local/bin/gatehouse")
        .arg("serve")
        .env_clear()
        .env("GATEHOUSE_DATABASE_URL", "sqlite:///data/gatehouse.db")
        .env("GATEHOUSE_BIND", format!("127.0.0.1:{port}"))
        .env(
            "GATEHOUSE_SECRET",
            "a-secret-for-the-root-filesystem-test-0123",
        )
        .env("GATEHOUSE_ADMIN_PASSWORD", "root filesystem admin 1")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("chroot starts");
    let mut server = KillOnDrop(server);
    let deadline = Instant::now() + Duration::from_secs(30);
    let answered = loop {
        if let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", port)) {
            use std::io::{Read, Write};
            let _ = stream.write_all(b"GET /healthz HTTP/1.0\r\nHost: localhost\r\n\r\n");
            let mut answer = String::new();
            let _ = stream.read_to_string(&mut answer);
            if answer.starts_with("HTTP/1.0 200") || answer.starts_with("HTTP/1.1 200") {
                break answer;
            }
        }
        if let Ok(Some(status)) = server.try_wait() {
            let mut err = String::new();
            use std::io::Read;
            let _ = server.stderr.take().unwrap().read_to_string(&mut err);
            panic!("the server stopped ({status}): {err}");
        }
        assert!(Instant::now() < deadline, "no /healthz within 30 s");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(answered.contains("\"status\""), "{answered}");
    // It ran as the image's user: the database it created belongs to 65532.
    use std::os::unix::fs::MetadataExt;
    let db = std::fs::metadata(root.join("data/gatehouse.db")).unwrap();
    assert_eq!(db.uid(), 65532);
}
