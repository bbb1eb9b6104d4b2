// The tables, written by hand so that one schema serves both backends (only types common to
// SQLite and PostgreSQL: Text, Timestamp, Bool, BigInt).

diesel::table! {
    users (id) {
        id -> Text,
        email -> Text,
        display_name -> Text,
        password_hash -> Text,
        role -> Text,
        password_change_required -> Bool,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        disabled_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    sessions (id) {
        id -> Text,
        token_digest -> Text,
        user_id -> Text,
        created_at -> Timestamp,
        last_seen_at -> Timestamp,
        expires_at -> Timestamp,
        ip -> Nullable<Text>,
        user_agent -> Nullable<Text>,
    }
}

diesel::table! {
    login_failures (id) {
        id -> Text,
        email -> Text,
        ip -> Text,
        created_at -> Timestamp,
    }
}

diesel::joinable!(sessions -> users (user_id));

diesel::table! {
    scopes (name) {
        name -> Text,
        description -> Text,
        admin_only -> Bool,
        created_at -> Timestamp,
    }
}

diesel::table! {
    api_keys (id) {
        id -> Text,
        user_id -> Text,
        issued_by -> Text,
        name -> Text,
        description -> Text,
        mode -> Text,
        kind -> Text,
        key_digest -> Text,
        display_prefix -> Text,
        last4 -> Text,
        scopes -> Text,
        allowed_ips -> Text,
        rate_limit_per_minute -> Nullable<BigInt>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        expires_at -> Nullable<Timestamp>,
        last_used_at -> Nullable<Timestamp>,
        last_used_ip -> Nullable<Text>,
        revoked_at -> Nullable<Timestamp>,
        revoked_by -> Nullable<Text>,
        rolled_from -> Nullable<Text>,
        rolled_to -> Nullable<Text>,
        allowed_referrers -> Text,
        allowed_endpoints -> Text,
        workspace_id -> Text,
        limits_changed_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    audit_events (id) {
        id -> Text,
        occurred_at -> Timestamp,
        action -> Text,
        actor_user_id -> Nullable<Text>,
        actor_key_id -> Nullable<Text>,
        subject_user_id -> Nullable<Text>,
        key_id -> Nullable<Text>,
        ip -> Nullable<Text>,
        details -> Text,
        workspace_id -> Nullable<Text>,
    }
}

diesel::joinable!(api_keys -> users (user_id));
diesel::joinable!(clients -> users (owner_user_id));
diesel::joinable!(consents -> clients (client_id));

diesel::table! {
    clients (id) {
        id -> Text,
        name -> Text,
        owner_user_id -> Nullable<Text>,
        client_type -> Text,
        secret_digest -> Nullable<Text>,
        previous_secret_digest -> Nullable<Text>,
        previous_secret_expires_at -> Nullable<Timestamp>,
        redirect_uris -> Text,
        allowed_scopes -> Text,
        grant_types -> Text,
        first_party -> Bool,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        disabled_at -> Nullable<Timestamp>,
        admin_locked -> Bool,
        resources -> Text,
        post_logout_redirect_uris -> Text,
        backchannel_logout_uri -> Nullable<Text>,
        backchannel_logout_session_required -> Bool,
        workspace_id -> Nullable<Text>,
        origin -> Text,
        registration_token_digest -> Nullable<Text>,
        metadata -> Text,
        registered_from -> Nullable<Text>,
        metadata_expires_at -> Nullable<Timestamp>,
        first_used_at -> Nullable<Timestamp>,
        last_used_at -> Nullable<Timestamp>,
        options -> Text,
        owner_workspace_id -> Nullable<Text>,
        disabled_by -> Nullable<Text>,
    }
}

diesel::table! {
    pushed_requests (id) {
        id -> Text,
        digest -> Text,
        client_id -> Text,
        params -> Text,
        created_at -> Timestamp,
        expires_at -> Timestamp,
        consumed_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    used_jtis (id) {
        id -> Text,
        expires_at -> Timestamp,
    }
}

diesel::table! {
    device_codes (id) {
        id -> Text,
        device_code_digest -> Text,
        user_code_digest -> Text,
        client_id -> Text,
        scopes -> Text,
        resource -> Nullable<Text>,
        status -> Text,
        user_id -> Nullable<Text>,
        workspace_id -> Nullable<Text>,
        session_id -> Nullable<Text>,
        auth_time -> Nullable<Timestamp>,
        interval_seconds -> Integer,
        last_polled_at -> Nullable<Timestamp>,
        created_at -> Timestamp,
        expires_at -> Timestamp,
        decided_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    registration_tokens (id) {
        id -> Text,
        digest -> Text,
        label -> Text,
        created_by -> Nullable<Text>,
        created_at -> Timestamp,
        expires_at -> Timestamp,
        uses_left -> Nullable<Integer>,
        revoked_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    blocked_client_hosts (host) {
        host -> Text,
        blocked_by -> Nullable<Text>,
        created_at -> Timestamp,
    }
}

diesel::table! {
    backchannel_logouts (id) {
        id -> Text,
        client_id -> Text,
        user_id -> Text,
        session_id -> Nullable<Text>,
        reason -> Text,
        created_at -> Timestamp,
        attempts -> BigInt,
        next_attempt_at -> Timestamp,
        delivered_at -> Nullable<Timestamp>,
        failed_at -> Nullable<Timestamp>,
        last_error -> Nullable<Text>,
    }
}

diesel::joinable!(backchannel_logouts -> clients (client_id));

diesel::table! {
    signing_keys (id) {
        id -> Text,
        alg -> Text,
        private_key_encrypted -> Text,
        public_jwk -> Text,
        created_at -> Timestamp,
        activates_at -> Timestamp,
        retired_at -> Nullable<Timestamp>,
        expires_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    consents (id) {
        id -> Text,
        user_id -> Text,
        client_id -> Text,
        scopes -> Text,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        first_party -> Bool,
        workspace_id -> Nullable<Text>,
    }
}

diesel::table! {
    auth_codes (id) {
        id -> Text,
        code_digest -> Text,
        client_id -> Text,
        user_id -> Text,
        redirect_uri -> Text,
        scopes -> Text,
        code_challenge -> Nullable<Text>,
        auth_time -> Timestamp,
        created_at -> Timestamp,
        expires_at -> Timestamp,
        consumed_at -> Nullable<Timestamp>,
        resource -> Nullable<Text>,
        nonce -> Nullable<Text>,
        session_id -> Nullable<Text>,
        workspace_id -> Nullable<Text>,
    }
}

diesel::table! {
    refresh_families (id) {
        id -> Text,
        client_id -> Text,
        user_id -> Text,
        code_id -> Nullable<Text>,
        scopes -> Text,
        auth_time -> Timestamp,
        created_at -> Timestamp,
        last_used_at -> Timestamp,
        expires_at -> Timestamp,
        revoked_at -> Nullable<Timestamp>,
        revoked_reason -> Nullable<Text>,
        resource -> Nullable<Text>,
        session_id -> Nullable<Text>,
        workspace_id -> Nullable<Text>,
        dpop_jkt -> Nullable<Text>,
    }
}

diesel::table! {
    refresh_tokens (id) {
        id -> Text,
        token_digest -> Text,
        family_id -> Text,
        scopes -> Text,
                created_at -> Timestamp,
        rotated_at -> Nullable<Timestamp>,
        grace_used -> Bool,
    }
}

diesel::joinable!(refresh_tokens -> refresh_families (family_id));

diesel::table! {
    revoked_access_tokens (id) {
        id -> Text,
        expires_at -> Timestamp,
        created_at -> Timestamp,
        revoked_from -> Nullable<Timestamp>,
    }
}

diesel::table! {
    workspaces (id) {
        id -> Text,
        name -> Text,
        slug -> Text,
        personal_user_id -> Nullable<Text>,
        key_issuance -> Text,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    workspace_members (workspace_id, user_id) {
        workspace_id -> Text,
        user_id -> Text,
        role -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    workspace_invitations (id) {
        id -> Text,
        workspace_id -> Text,
        email -> Text,
        role -> Text,
        token_digest -> Text,
        invited_by -> Nullable<Text>,
        created_at -> Timestamp,
        expires_at -> Timestamp,
        accepted_at -> Nullable<Timestamp>,
        accepted_by -> Nullable<Text>,
        revoked_at -> Nullable<Timestamp>,
    }
}

diesel::joinable!(workspace_members -> workspaces (workspace_id));
diesel::joinable!(workspace_members -> users (user_id));

diesel::allow_tables_to_appear_in_same_query!(
    workspaces,
    workspace_members,
    workspace_invitations,
    users,
    backchannel_logouts,
    sessions,
    login_failures,
    api_keys,
    scopes,
    audit_events,
    clients,
    signing_keys,
    consents,
    auth_codes,
    refresh_families,
    refresh_tokens,
    revoked_access_tokens,
    registration_tokens,
    blocked_client_hosts,
    pushed_requests,
    device_codes,
    used_jtis,
);
