//! Gatehouse's own TLS: rustls on aws-lc (the provider of every other signature here), TLS 1.3
//! and 1.2, the certificate chain and key read from PEM files (`GATEHOUSE_TLS_CERT`,
//! `GATEHOUSE_TLS_KEY`) and read again on SIGHUP — a renewed certificate takes effect for new
//! connections without a restart; a bad pair is refused at start and, on a reload, logged while
//! the previous pair stays in use.

use std::sync::{Arc, RwLock};

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

use crate::config::TlsFiles;

/// Why a certificate or key cannot be served.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("GATEHOUSE_TLS_CERT {path}: {why}")]
    Cert { path: String, why: String },
    #[error("GATEHOUSE_TLS_KEY {path}: {why}")]
    Key { path: String, why: String },
    #[error("GATEHOUSE_TLS_CERT and GATEHOUSE_TLS_KEY do not belong together: {0}")]
    Pair(String),
    #[error("TLS: {0}")]
    Config(String),
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// The chain and key the files hold, checked to belong together.
fn load(files: &TlsFiles) -> Result<CertifiedKey, TlsError> {
    let cert_path = files.cert.display().to_string();
    let chain = CertificateDer::pem_file_iter(&files.cert)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| TlsError::Cert {
            path: cert_path.clone(),
            why: e.to_string(),
        })?;
    if chain.is_empty() {
        return Err(TlsError::Cert {
            path: cert_path,
            why: "no CERTIFICATE in it".into(),
        });
    }
    let key = PrivateKeyDer::from_pem_file(&files.key).map_err(|e| TlsError::Key {
        path: files.key.display().to_string(),
        why: e.to_string(),
    })?;
    CertifiedKey::from_der(chain, key, &provider()).map_err(|e| TlsError::Pair(e.to_string()))
}

/// The certificate served now; `reload` swaps it.
#[derive(Debug)]
pub struct Certificates {
    files: TlsFiles,
    current: RwLock<Arc<CertifiedKey>>,
}

impl Certificates {
    pub fn load(files: &TlsFiles) -> Result<Certificates, TlsError> {
        Ok(Certificates {
            files: files.clone(),
            current: RwLock::new(Arc::new(load(files)?)),
        })
    }

    /// Read the files again; on an error the current pair stays.
    pub fn reload(&self) -> Result<(), TlsError> {
        let fresh = Arc::new(load(&self.files)?);
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = fresh;
        Ok(())
    }
}

impl ResolvesServerCert for Certificates {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(
            self.current
                .read()
                .unwrap_or_else(|p| p.into_inner())
                .clone(),
        )
    }
}

/// The server's TLS configuration over `certificates`.
pub fn server_config(certificates: Arc<Certificates>) -> Result<rustls::ServerConfig, TlsError> {
    Ok(rustls::ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| TlsError::Config(e.to_string()))?
        .with_no_client_auth()
        .with_cert_resolver(certificates))
}

/// Read the certificate again at every SIGHUP (`systemctl reload`, `kill -HUP`).
pub fn reload_on_sighup(certificates: Arc<Certificates>) {
    actix_web::rt::spawn(async move {
        let Ok(mut hangups) =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        else {
            log::error!("cannot listen for SIGHUP: the TLS certificate is read at start only");
            return;
        };
        while hangups.recv().await.is_some() {
            match certificates.reload() {
                Ok(()) => log::info!("SIGHUP: TLS certificate and key read again"),
                Err(e) => log::error!("SIGHUP: {e}; still serving the previous certificate"),
            }
        }
    });
}
