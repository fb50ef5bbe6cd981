//! The portable schema, identical for SQLite and PostgreSQL (TEXT ids, BIGINT epoch seconds,
//! BOOLEAN, TEXT JSON lists). Kept by hand in step with both migration folders.
diesel::table! {
    users (id) {
        id -> Text,
        username -> Text,
        username_key -> Text,
        email -> Nullable<Text>,
        email_confirmed -> Bool,
        password_hash -> Nullable<Text>,
        enabled -> Bool,
        acl -> Text,
        tenant_uuid -> Text,
        purpose -> Text,
        created_at -> BigInt,
    }
}

diesel::table! {
    clients (id) {
        id -> Text,
        secret_hash -> Nullable<Text>,
        grant_types -> Text,
        scopes -> Text,
        default_scopes -> Text,
        created_at -> BigInt,
    }
}

diesel::table! {
    sessions (id) {
        id -> Text,
        user_id -> Nullable<Text>,
        client_id -> Nullable<Text>,
        tenant_uuid -> Nullable<Text>,
        mobile -> Bool,
        user_agent -> Text,
        remote_addr -> Text,
        created_at -> BigInt,
    }
}

diesel::table! {
    refresh_tokens (id) {
        id -> Text,
        hash -> Text,
        family_id -> Text,
        parent_id -> Nullable<Text>,
        generation -> BigInt,
        client_id -> Text,
        user_id -> Nullable<Text>,
        session_id -> Nullable<Text>,
        dialect -> Text,
        scopes -> Text,
        issued_at -> BigInt,
        family_issued_at -> BigInt,
        expires_at -> Nullable<BigInt>,
        last_used_at -> Nullable<BigInt>,
        consumed_at -> Nullable<BigInt>,
        revoked_at -> Nullable<BigInt>,
        mobile -> Bool,
        metadata -> Text,
        retry_answer -> Nullable<Text>,
        retry_count -> BigInt,
    }
}

diesel::table! {
    access_tokens (hash) {
        hash -> Text,
        session_id -> Text,
        user_id -> Nullable<Text>,
        client_id -> Nullable<Text>,
        family_id -> Nullable<Text>,
        dialect -> Text,
        scopes -> Text,
        issued_at -> BigInt,
        expires_at -> BigInt,
        revoked_at -> Nullable<BigInt>,
        metadata -> Text,
    }
}

diesel::table! {
    tenants (uuid) {
        uuid -> Text,
        parent_uuid -> Nullable<Text>,
        name -> Text,
        created_at -> BigInt,
    }
}

diesel::table! {
    auth_failures (id) {
        id -> Text,
        subject -> Text,
        at -> BigInt,
        pending -> Bool,
    }
}

diesel::joinable!(sessions -> users (user_id));
diesel::joinable!(access_tokens -> sessions (session_id));
diesel::joinable!(refresh_tokens -> users (user_id));
diesel::allow_tables_to_appear_in_same_query!(
    users,
    clients,
    sessions,
    refresh_tokens,
    access_tokens,
    tenants,
    auth_failures
);
