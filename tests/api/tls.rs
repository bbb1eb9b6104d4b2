//! Gatehouse's own TLS, tried on the real binary: it serves https with the configured
//! certificate (and HSTS, the derived issuer being https), takes a renewed certificate on
//! SIGHUP without a restart, and refuses to start with a key that is not the certificate's.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::helpers::KillOnDrop;

const BINARY: &str = env!("CARGO_BIN_EXE_gatehouse");

struct Pair {
    cert_pem: String,
    key_pem: String,
    der: Vec<u8>,
}

fn new_pair() -> Pair {
    let made = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    Pair {
        cert_pem: made.cert.pem(),
        key_pem: made.signing_key.serialize_pem(),
        der: made.cert.der().to_vec(),
    }
}

fn write(dir: &Path, cert: &str, key: &str) {
    std::fs::write(dir.join("cert.pem"), cert).unwrap();
    std::fs::write(dir.join("key.pem"), key).unwrap();
}

fn serve(dir: &Path, port: u16) -> Command {
    let mut command = Command::new(BINARY);
    command
        .arg("serve")
        .env_clear()
        .env(
            "GATEHOUSE_DATABASE_URL",
            format!("sqlite://{}", dir.join("gatehouse.db").display()),
        )
        .env("GATEHOUSE_BIND", format!("localhost:{port}"))
        .env(
            "GATEHOUSE_SECRET",
            "a-secret-for-the-tls-test-0123456789abcd",
        )
        .env("GATEHOUSE_ADMIN_PASSWORD", "tls test admin 1")
        .env("GATEHOUSE_TLS_CERT", dir.join("cert.pem"))
        .env("GATEHOUSE_TLS_KEY", dir.join("key.pem"))
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    command
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `GET /healthz` over TLS, trusting `roots`: the status, HSTS and the certificate served.
async fn healthz(port: u16, roots: &[&Pair]) -> Option<(u16, Option<String>, Vec<u8>)> {
    let mut builder = reqwest::Client::builder().tls_info(true);
    for root in roots {
        builder = builder.add_root_certificate(
            reqwest::Certificate::from_pem(root.cert_pem.as_bytes()).unwrap(),
        );
    }
    let client = builder.build().unwrap();
    let answer = client
        .get(format!("https://localhost:{port}/healthz"))
        .send()
        .await
        .ok()?;
    let served = answer
        .extensions()
        .get::<reqwest::tls::TlsInfo>()
        .and_then(|info| info.peer_certificate())
        .map(<[u8]>::to_vec)
        .unwrap_or_default();
    let hsts = answer
        .headers()
        .get("strict-transport-security")
        .map(|v| v.to_str().unwrap().to_owned());
    Some((answer.status().as_u16(), hsts, served))
}

#[actix_web::test]
async fn serves_https_and_takes_a_renewed_certificate_on_sighup() {
    let dir = tempfile::tempdir().unwrap();
    let (first, renewed) = (new_pair(), new_pair());
    write(dir.path(), &first.cert_pem, &first.key_pem);
    let port = free_port();
    let mut server = KillOnDrop(serve(dir.path(), port).spawn().unwrap());
    let deadline = Instant::now() + Duration::from_secs(30);
    let (status, hsts, served) = loop {
        if let Some(answer) = healthz(port, &[&first]).await {
            break answer;
        }
        assert!(server.try_wait().unwrap().is_none(), "the server stopped");
        assert!(Instant::now() < deadline, "no https answer within 30 s");
        actix_web::rt::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(status, 200);
    assert_eq!(served, first.der, "the configured certificate");
    assert_eq!(hsts.as_deref(), Some("max-age=63072000"));
    // Plain HTTP on the TLS port gets no answer from the app.
    let plain = reqwest::get(format!("http://localhost:{port}/healthz")).await;
    assert!(plain.is_err() || plain.unwrap().status().as_u16() != 200);

    // A broken renewal (a key of another certificate) is refused: the old pair stays.
    write(dir.path(), &renewed.cert_pem, &first.key_pem);
    // SAFETY: kill(2) on our own child's pid.
    unsafe { libc::kill(server.id() as i32, libc::SIGHUP) };
    actix_web::rt::time::sleep(Duration::from_millis(500)).await;
    let (_, _, still) = healthz(port, &[&first, &renewed]).await.unwrap();
    assert_eq!(still, first.der, "a bad pair is not taken");

    // The renewed pair: new connections get it, without a restart.
    write(dir.path(), &renewed.cert_pem, &renewed.key_pem);
    unsafe { libc::kill(server.id() as i32, libc::SIGHUP) };
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (status, _, served) = healthz(port, &[&first, &renewed]).await.unwrap();
        if served == renewed.der {
            assert_eq!(status, 200);
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the renewed certificate was never served"
        );
        actix_web::rt::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        server.try_wait().unwrap().is_none(),
        "still the same process"
    );
}

#[test]
fn a_key_that_is_not_the_certificates_is_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, other) = (new_pair(), new_pair());
    write(dir.path(), &cert.cert_pem, &other.key_pem);
    let out = serve(dir.path(), free_port()).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("do not belong together"), "{err}");
    // Only one of the two settings: refused too.
    let out = Command::new(BINARY)
        .arg("serve")
        .env_clear()
        .env(
            "GATEHOUSE_DATABASE_URL",
            format!("sqlite://{}", dir.path().join("x.db").display()),
        )
        .env("GATEHOUSE_TLS_CERT", dir.path().join("cert.pem"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("GATEHOUSE_TLS_KEY"), "{err}");
}
