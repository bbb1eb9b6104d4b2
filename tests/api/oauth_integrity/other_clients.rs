//! Codes and refresh tokens presented by a client they were not issued to: refused, and revoking
//! nothing of the grant's own client.

use reqwest::StatusCode;
use serde_json::Value;

use crate::both_backends;
use crate::oauth::{
    authorize, authorize_url, code_for, exchange, oauth_error, obtain_tokens, pkce, register,
};

use super::{events, field, invalid_grant, me_status, redeem, refresh};

both_backends!(
    a_code_presented_by_another_client_is_refused_and_stays_redeemable,
    |app| async move {
        app.login_admin().await;
        let victim = register(app, false, false).await;
        let attacker = register(app, false, false).await;
        let code = code_for(app, &victim, "read:users").await;
        assert_eq!(
            oauth_error(redeem(app, &attacker, &code, None).await).await,
            invalid_grant()
        );
        // The right client with the wrong redirect URI: refused, and nothing is spent either.
        let elsewhere = exchange(
            app,
            &victim,
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", "http://127.0.0.1/cb"),
            ],
        )
        .await;
        assert_eq!(oauth_error(elsewhere).await, invalid_grant());
        let redeemed = redeem(app, &victim, &code, None).await;
        assert_eq!(
            redeemed.status(),
            StatusCode::OK,
            "the client the code was issued to still redeems it"
        );
    }
);

both_backends!(
    a_spent_code_presented_by_another_client_revokes_nothing,
    |app| async move {
        app.login_admin().await;
        let victim = register(app, false, false).await;
        let attacker = register(app, false, false).await;
        let code = code_for(app, &victim, "read:users").await;
        let tokens: Value = redeem(app, &victim, &code, None)
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(
            oauth_error(redeem(app, &attacker, &code, None).await).await,
            invalid_grant()
        );
        assert_eq!(
            me_status(app, &field(&tokens, "access_token")).await,
            StatusCode::OK,
            "the victim's access token still works"
        );
        assert_eq!(
            refresh(app, &victim, &field(&tokens, "refresh_token"))
                .await
                .status(),
            StatusCode::OK,
            "and so does its refresh token"
        );
        assert!(events(app, "oauth.code.replay_detected").await.is_empty());
    }
);

both_backends!(
    a_spent_public_code_without_its_verifier_revokes_nothing,
    |app| async move {
        app.login_admin().await;
        let native = register(app, true, false).await;
        let (verifier, challenge) = pkce();
        let url = authorize_url(&native, "read:users", Some(&challenge), "");
        let code = authorize(app, &url, "approve").await["code"].clone();
        let tokens: Value = redeem(app, &native, &code, Some(&verifier))
            .await
            .json()
            .await
            .unwrap();
        // Anyone can name a public client; only the verifier ties a request to its code.
        for wrong in [None, Some(pkce().0)] {
            let presented = redeem(app, &native, &code, wrong.as_deref()).await;
            assert_eq!(oauth_error(presented).await, invalid_grant());
        }
        let refresh_token = field(&tokens, "refresh_token");
        let rotated: Value = refresh(app, &native, &refresh_token)
            .await
            .json()
            .await
            .unwrap();
        assert!(
            field(&rotated, "refresh_token").starts_with("rt_"),
            "the grant survived: {rotated}"
        );
        // The real replay (the code with its verifier) is still detected and revokes.
        let replay = redeem(app, &native, &code, Some(&verifier)).await;
        assert_eq!(oauth_error(replay).await, invalid_grant());
        assert_eq!(
            oauth_error(refresh(app, &native, &field(&rotated, "refresh_token")).await).await,
            invalid_grant()
        );
    }
);

// RFC 6749 §10.4 / RFC 9700 §4.14.2: a refresh token is bound to its client. Another client's
// attempt is refused and changes nothing: it proves nothing against the grant's own client,
// and revoking on it would let any registered app end other apps' grants with a leaked or
// spent token.
both_backends!(
    a_refresh_token_presented_by_another_client_is_refused_and_revokes_nothing,
    |app| async move {
        app.login_admin().await;
        let victim = register(app, false, true).await;
        let attacker = register(app, false, true).await;
        let tokens = obtain_tokens(app, &victim).await;
        let first = field(&tokens, "refresh_token");
        assert_eq!(
            oauth_error(refresh(app, &attacker, &first).await).await,
            invalid_grant(),
            "a live token, another client"
        );
        let rotated: Value = refresh(app, &victim, &first).await.json().await.unwrap();
        let second = field(&rotated, "refresh_token");
        assert!(second.starts_with("rt_"), "{rotated}");
        assert_eq!(
            oauth_error(refresh(app, &attacker, &first).await).await,
            invalid_grant(),
            "a rotated token, another client"
        );
        assert!(events(app, "oauth.refresh.reuse_detected").await.is_empty());
        assert_eq!(
            refresh(app, &victim, &second).await.status(),
            StatusCode::OK,
            "the family was not revoked by the attempts"
        );
    }
);
