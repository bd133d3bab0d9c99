//! Tenants: the admin API's bodies (`/api/v2/gamify/admin/tenants`), which
//! only the default tenant's admin keys may use.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::KeyCreated;

/// The body of `POST /api/v2/gamify/admin/tenants`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TenantRequest {
    /// A lowercase letter, then lowercase letters, digits or underscores;
    /// at most 24 in all; not `default`.
    #[schema(example = "acme")]
    pub name: String,
}

/// A tenant as the admin API lists it.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, ToSchema)]
pub struct TenantResponse {
    /// Its name; requests may name it in the `Gamify-Tenant` header.
    pub name: String,
    /// When it was made (the default tenant: null).
    pub created_at: Option<String>,
}

/// A new tenant with its first key (every scope), whose secret is shown
/// only now: hand it to the tenant's operator, who makes the rest.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, ToSchema)]
pub struct TenantCreated {
    /// The tenant.
    #[serde(flatten)]
    pub tenant: TenantResponse,
    /// Its first key, with `ingest`, `read` and `admin`.
    pub admin_key: KeyCreated,
}
