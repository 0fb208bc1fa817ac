//! Mutual TLS for a partner bank: the daemon serves HTTPS with `daemon.tls_cert`/`tls_key`
//! and accepts client certificates of `daemon.client_ca`; a bank whose config names its
//! certificate (`client_cert_sha256`) is refused without that exact certificate, even with a
//! valid token. Real TLS on loopback, a throwaway PKI made with rcgen.

use crate::helpers::TestApp;
use reqwest::StatusCode;
use sha2::Digest;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

struct Pki {
    dir: tempfile::TempDir,
    /// SHA-256 of the registered client certificate's DER bytes
    registered: String,
}

fn pki() -> Pki {
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
        KeyUsagePurpose,
    };
    let dir = tempfile::tempdir().unwrap();
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "utility partner CA");
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca = ca.self_signed(&ca_key).unwrap();
    let server_key = KeyPair::generate().unwrap();
    let mut server = CertificateParams::new(vec!["localhost".to_string()]).unwrap();
    server.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let server = server.signed_by(&server_key, &ca, &ca_key).unwrap();
    let d = dir.path();
    std::fs::write(d.join("ca.pem"), ca.pem()).unwrap();
    std::fs::write(d.join("server.pem"), server.pem()).unwrap();
    std::fs::write(d.join("server.key"), server_key.serialize_pem()).unwrap();
    let mut registered = String::new();
    for name in ["bank", "other"] {
        let key = KeyPair::generate().unwrap();
        let mut c = CertificateParams::new(vec![name.to_string()]).unwrap();
        c.distinguished_name.push(DnType::CommonName, name);
        c.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let c = c.signed_by(&key, &ca, &ca_key).unwrap();
        if name == "bank" {
            registered = hex::encode(sha2::Sha256::digest(c.der()));
        }
        std::fs::write(
            d.join(format!("{name}-identity.pem")),
            format!("{}{}", c.pem(), key.serialize_pem()),
        )
        .unwrap();
    }
    Pki { dir, registered }
}

fn client(pki: &Pki, identity: Option<&str>) -> reqwest::Client {
    let ca = reqwest::Certificate::from_pem(&std::fs::read(pki.dir.path().join("ca.pem")).unwrap())
        .unwrap();
    let mut b = reqwest::Client::builder()
        .use_rustls_tls()
        .add_root_certificate(ca);
    if let Some(name) = identity {
        let pem = std::fs::read(pki.dir.path().join(format!("{name}-identity.pem"))).unwrap();
        b = b.identity(reqwest::Identity::from_pem(&pem).unwrap());
    }
    b.build().unwrap()
}

#[tokio::test]
async fn a_bank_that_names_its_certificate_is_refused_without_it() {
    let pki = pki();
    let d = pki.dir.path();
    let t = TestApp::spawn_with(&format!(
        "[daemon]\ntls_cert = \"{}\"\ntls_key = \"{}\"\nclient_ca = \"{}\"\n\
         [[bank]]\nid = \"MT\"\nname = \"mTLS bank\"\n[bank.partner]\nclient_cert_sha256 = \"{}\"\n\
         [[bank]]\nid = \"TK\"\nname = \"token-only bank\"\n[bank.partner]\n",
        d.join("server.pem").display(),
        d.join("server.key").display(),
        d.join("ca.pem").display(),
        pki.registered.to_uppercase(),
    ))
    .await;
    let mt = billrecon::api::partner::auth::issue_credential(&t.app, "MT", "cli:test")
        .await
        .unwrap()
        .1;
    let tk = billrecon::api::partner::auth::issue_credential(&t.app, "TK", "cli:test")
        .await
        .unwrap()
        .1;
    let app = Arc::new(t.app);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!(
        "https://localhost:{}/partner/v1/whoami",
        listener.local_addr().unwrap().port()
    );
    let stop = CancellationToken::new();
    let task = tokio::spawn(billrecon::scheduler::run_with_listener(
        app.clone(),
        stop.clone(),
        Some(listener),
    ));
    let call = |c: reqwest::Client, token: String| {
        let url = url.clone();
        async move {
            for _ in 0..100 {
                match c.get(&url).bearer_auth(&token).send().await {
                    Ok(r) => return r.status(),
                    Err(e) if e.is_connect() => {
                        tokio::time::sleep(std::time::Duration::from_millis(50)).await
                    }
                    Err(e) => panic!("{e}"),
                }
            }
            panic!("the HTTPS listener did not answer")
        }
    };
    // the registered certificate and the bank's token
    assert_eq!(
        call(client(&pki, Some("bank")), mt.clone()).await,
        StatusCode::OK
    );
    // the token without a certificate, or with another certificate of the same CA
    assert_eq!(
        call(client(&pki, None), mt.clone()).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        call(client(&pki, Some("other")), mt.clone()).await,
        StatusCode::UNAUTHORIZED
    );
    // a bank that names no certificate needs none (its token suffices)
    assert_eq!(call(client(&pki, None), tk).await, StatusCode::OK);
    // and plain HTTP is not served
    let plain = url.replace("https://", "http://");
    assert!(reqwest::get(&plain)
        .await
        .map(|r| r.status() != StatusCode::OK)
        .unwrap_or(true));
    stop.cancel();
    let _ = tokio::time::timeout(std::time::Duration::from_secs(20), task).await;
}
