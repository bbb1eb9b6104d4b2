//! RP-Initiated Logout 1.0 (`/oauth/logout`): an app sends the browser here to sign out; the
//! session's end and the back-channel notices are `backchannel`'s.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use crate::audit::{self, Action, NewEvent};
use crate::pages::{Nav, csrf_matches, error_page, render, see_other};
use crate::principal::{PageAccess, SignedIn, urlencode};
use crate::state::AppState;

pub use crate::oidc::backchannel::*;

// ---- RP-Initiated Logout -------------------------------------------------------------------

#[derive(Debug, Default, Clone, Deserialize)]
pub struct LogoutParams {
    id_token_hint: Option<String>,
    client_id: Option<String>,
    post_logout_redirect_uri: Option<String>,
    state: Option<String>,
    csrf_token: Option<String>,
    decision: Option<String>,
}

/// The claims of an `id_token_hint` that sign-out reads.
#[derive(Deserialize)]
struct HintClaims {
    sub: String,
    aud: String,
    exp: i64,
    sid: Option<String>,
}

/// A sign-out request that passed its checks.
struct Checked {
    /// Where to send the browser afterwards (registered exactly), with `state`.
    redirect: Option<String>,
    /// The hint is ours, unexpired, for the signed-in user and session.
    hint_matches: bool,
    client_name: Option<String>,
}

#[derive(Template)]
#[template(path = "logout.html")]
struct LogoutPage<'a> {
    nav: Option<Nav>,
    client_name: Option<&'a str>,
    csrf_token: &'a str,
    id_token_hint: &'a str,
    client_id: &'a str,
    post_logout_redirect_uri: &'a str,
    state: &'a str,
}

#[derive(Template)]
#[template(path = "signed_out.html")]
struct SignedOutPage {
    nav: Option<Nav>,
    stayed: bool,
}

fn refusal(message: &str) -> HttpResponse {
    error_page(
        StatusCode::BAD_REQUEST,
        "This sign-out link is not valid",
        message,
    )
}

/// Where the browser goes after signing out: a registered `post_logout_redirect_uri` of the
/// app, with `state`; none when none is asked.
fn redirect_of(
    p: &LogoutParams,
    client: Option<&crate::clients::Client>,
) -> Result<Option<String>, HttpResponse> {
    let Some(uri) = p
        .post_logout_redirect_uri
        .as_deref()
        .filter(|u| !u.is_empty())
    else {
        return Ok(None);
    };
    let Some(client) = client else {
        return Err(refusal(
            "A post_logout_redirect_uri needs the app: send client_id or id_token_hint.",
        ));
    };
    if !client.post_logout_redirect_allowed(uri) {
        return Err(refusal(
            "The post_logout_redirect_uri is not one the app registered.",
        ));
    }
    let mut to = uri.to_owned();
    if let Some(s) = p.state.as_deref().filter(|s| !s.is_empty()) {
        to.push(if to.contains('?') { '&' } else { '?' });
        to.push_str("state=");
        to.push_str(&urlencode(s));
    }
    Ok(Some(to))
}

async fn check(
    state: &AppState,
    p: &LogoutParams,
    signed_in: Option<&SignedIn>,
) -> Result<Checked, HttpResponse> {
    let hint = p.id_token_hint.as_deref().filter(|h| !h.is_empty());
    let client_id = p.client_id.as_deref().filter(|c| !c.is_empty());
    // The hint is verified against the app it names (signature, issuer; expired or not).
    let hinted: Option<HintClaims> = match hint {
        None => None,
        Some(token) => {
            let aud = unverified_aud(token);
            let aud = aud.as_deref().unwrap_or("");
            state
                .key_ring()
                .verify_id_token_hint::<HintClaims>(token, &state.settings.issuer, aud)
                .ok()
        }
    };
    if let (Some(hinted), Some(client_id)) = (&hinted, client_id)
        && hinted.aud != client_id
    {
        return Err(refusal(
            "The id_token_hint was issued to another app than client_id names.",
        ));
    }
    let app_id = client_id
        .map(str::to_owned)
        .or_else(|| hinted.as_ref().map(|h| h.aud.clone()));
    let client = match &app_id {
        None => None,
        Some(id) => match state.client(id).await {
            Ok(found) => found.map(|c| (*c).clone()),
            Err(_) => {
                return Err(error_page(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "Unavailable",
                    "Gatehouse cannot complete the request now. Try again in a moment.",
                ));
            }
        },
    };
    let redirect = redirect_of(p, client.as_ref())?;
    let now = state.now().and_utc().timestamp();
    let hint_matches = match (&hinted, signed_in) {
        (Some(h), Some(s)) => {
            h.exp > now
                && h.sub == s.user.id
                && h.sid.as_deref().is_none_or(|sid| sid == s.session.id)
        }
        _ => false,
    };
    Ok(Checked {
        redirect,
        hint_matches,
        client_name: client.map(|c| c.name),
    })
}

/// The `aud` a JWT names, before verification (to pick the app to verify it for).
fn unverified_aud(token: &str) -> Option<String> {
    use base64::Engine;
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .ok()?;
    let value: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    match &value["aud"] {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Array(a) if a.len() == 1 => a[0].as_str().map(str::to_owned),
        _ => None,
    }
}

/// The CSRF token of a sign-out confirmation: bound to the session and to the request.
fn confirm_token(state: &AppState, session_id: &str, p: &LogoutParams) -> String {
    state.csrf_pepper.digest(&[
        "logout",
        session_id,
        p.client_id.as_deref().unwrap_or(""),
        p.post_logout_redirect_uri.as_deref().unwrap_or(""),
        p.state.as_deref().unwrap_or(""),
    ])
}

/// End `signed_in`'s session (audited, apps notified) and answer with the redirect or page.
async fn sign_out(
    req: &HttpRequest,
    state: &AppState,
    signed_in: &SignedIn,
    checked: &Checked,
) -> HttpResponse {
    let (user_id, session_id) = (signed_in.user.id.clone(), signed_in.session.id.clone());
    let mut event = NewEvent::new(Action::SignedOut);
    event.actor_user_id = Some(user_id.clone());
    event.subject_user_id = Some(user_id.clone());
    event.ip = crate::accounts::pages::request_ip(req);
    event.details = serde_json::json!({ "via": "oauth/logout" });
    let now = state.now();
    let ended = state
        .db(move |c| {
            crate::accounts::sessions::delete_session(c, &session_id)?;
            audit::record(c, &event, now)?;
            session_ended(c, &user_id, Ended::Session(&session_id), "logout", now)
        })
        .await;
    match ended {
        Ok(end) => after_session_end(state, end).await,
        Err(e) => {
            log::error!("sign-out: {e}");
            return error_page(
                StatusCode::SERVICE_UNAVAILABLE,
                "Sign-out failed",
                "Try again in a moment.",
            );
        }
    }
    let answer = match &checked.redirect {
        Some(to) => see_other(to),
        None => render(
            StatusCode::OK,
            &SignedOutPage {
                nav: None,
                stayed: false,
            },
        ),
    };
    crate::accounts::pages::without_session_cookie(answer, &state.settings)
}

/// RP-Initiated Logout (OpenID Connect RP-Initiated Logout 1.0)
///
/// A browser endpoint. With an `id_token_hint` of the signed-in user and session (unexpired),
/// the session ends at once; otherwise the user confirms on a page. Afterwards the browser goes
/// to `post_logout_redirect_uri` (with `state`) when it is registered, character for
/// character, for the app (`client_id` or the hint's audience); an unregistered one is an error
/// page, never a redirect. Apps with a back-channel logout URI are notified in the background.
#[utoipa::path(get, path = "/oauth/logout", tag = "oauth",
    security((), ("session" = [])),
    params(
        ("id_token_hint" = Option<String>, Query, description = "An ID token this server issued to the app"),
        ("client_id" = Option<String>, Query),
        ("post_logout_redirect_uri" = Option<String>, Query, description = "Registered exactly for the app"),
        ("state" = Option<String>, Query, description = "Returned with the redirect"),
    ),
    responses(
        (status = 303, description = "Signed out: to `post_logout_redirect_uri` (with `state`)", headers(("Location" = String))),
        (status = 200, description = "The confirmation page, or the signed-out page", content_type = "text/html", body = String),
        (status = 400, description = "An unregistered `post_logout_redirect_uri`, or a hint for another app: an error page", content_type = "text/html", body = String),
    ))]
pub async fn end_session(
    req: HttpRequest,
    state: web::Data<AppState>,
    signed_in: Result<SignedIn, PageAccess>,
    query: web::Query<LogoutParams>,
) -> HttpResponse {
    let signed_in = signed_in.ok();
    let checked = match check(&state, &query, signed_in.as_ref()).await {
        Ok(c) => c,
        Err(page) => return page,
    };
    let Some(signed_in) = signed_in else {
        // Nobody to sign out here: on to the app, or say so.
        return match &checked.redirect {
            Some(to) => see_other(to),
            None => render(
                StatusCode::OK,
                &SignedOutPage {
                    nav: None,
                    stayed: false,
                },
            ),
        };
    };
    if checked.hint_matches {
        return sign_out(&req, &state, &signed_in, &checked).await;
    }
    let csrf = confirm_token(&state, &signed_in.session.id, &query);
    render(
        StatusCode::OK,
        &LogoutPage {
            nav: Some(signed_in.nav("")),
            client_name: checked.client_name.as_deref(),
            csrf_token: &csrf,
            id_token_hint: query.id_token_hint.as_deref().unwrap_or(""),
            client_id: query.client_id.as_deref().unwrap_or(""),
            post_logout_redirect_uri: query.post_logout_redirect_uri.as_deref().unwrap_or(""),
            state: query.state.as_deref().unwrap_or(""),
        },
    )
}

/// The confirmation's answer (a POST with the page's CSRF token; `decision=logout` or `stay`).
pub async fn confirm(
    req: HttpRequest,
    state: web::Data<AppState>,
    signed_in: Result<SignedIn, PageAccess>,
    form: web::Form<LogoutParams>,
) -> HttpResponse {
    let Ok(signed_in) = signed_in else {
        return render(
            StatusCode::OK,
            &SignedOutPage {
                nav: None,
                stayed: false,
            },
        );
    };
    let checked = match check(&state, &form, Some(&signed_in)).await {
        Ok(c) => c,
        Err(page) => return page,
    };
    let expected = confirm_token(&state, &signed_in.session.id, &form);
    if !csrf_matches(&expected, form.csrf_token.as_deref().unwrap_or("")) {
        return crate::pages::form_expired();
    }
    if form.decision.as_deref() != Some("logout") {
        return render(
            StatusCode::OK,
            &SignedOutPage {
                nav: Some(signed_in.nav("")),
                stayed: true,
            },
        );
    }
    sign_out(&req, &state, &signed_in, &checked).await
}
