//! Tenants on the wire: which tenant's routes a request reaches, and the
//! operator's routes that make and list tenants.
//!
//! Every tenant gets the whole API ([`super::router`] over its engine). A
//! request reaches the tenant its key belongs to; a request without a valid
//! key reaches the default tenant (where it is refused unless the API is
//! open). A request may name its tenant in the `Gamify-Tenant` header: with
//! a key of another tenant it is refused (403), so a client that names its
//! tenant can never act on another by mistake.

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, RwLock};
use std::task::{Context, Poll};

use axum::Router;
use axum::extract::{DefaultBodyLimit, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use gamify_store::keys::Scope;
use gamify_store::tenants::{DEFAULT_TENANT, check_tenant_name};
use tower_service::Service;

use super::auth::{authorize, bearer};
use super::error::ApiError;
use super::extract::{ApiJson, BodyLimit};
use super::handlers;
use crate::auth::Denied;
use crate::engine::Engine;
use crate::model::{ErrorResponse, TenantCreated, TenantRequest, TenantResponse};
use crate::tenants::{Owner, Tenancy};

/// The header a request may name its tenant in.
pub const TENANT_HEADER: HeaderName = HeaderName::from_static("gamify-tenant");

/// The tenants and their routers (built once per tenant).
#[derive(Clone)]
pub struct Dispatch {
    tenancy: Tenancy,
    default: Router,
    routers: Arc<RwLock<HashMap<String, Router>>>,
}

impl BodyLimit for Dispatch {
    fn max_body_bytes(&self) -> usize {
        self.tenancy.default_engine().max_body_bytes()
    }

    fn body_timeout(&self) -> std::time::Duration {
        self.tenancy.default_engine().body_timeout()
    }
}

impl Dispatch {
    fn router_of(&self, name: &str, engine: &Engine) -> Router {
        if let Some(router) = self
            .routers
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(name)
        {
            return router.clone();
        }
        let router = super::router(engine.clone());
        self.routers
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(name.to_owned(), router.clone());
        router
    }

    fn default_router(&self) -> (HeaderValue, Router) {
        (
            HeaderValue::from_static(DEFAULT_TENANT),
            self.default.clone(),
        )
    }

    fn tenant_router(&self, name: &str, engine: &Engine) -> (HeaderValue, Router) {
        let value =
            HeaderValue::from_str(name).unwrap_or_else(|_| HeaderValue::from_static("invalid"));
        (value, self.router_of(name, engine))
    }

    /// The router a request goes to, with its tenant's name for the
    /// answer's `Gamify-Tenant`, or why it may go nowhere.
    fn pick(&self, headers: &HeaderMap) -> Result<(HeaderValue, Router), ApiError> {
        let named = headers
            .get(TENANT_HEADER)
            .map(|v| v.to_str().unwrap_or("\u{0}"));
        // A name no tenant can have is a mistake in the request, not a
        // question of keys: say what a name looks like.
        if let Some(named) = named.filter(|n| *n != DEFAULT_TENANT) {
            check_tenant_name(named).map_err(|why| {
                ApiError::invalid("Gamify-Tenant", format!("Gamify-Tenant: {why}"))
            })?;
        }
        if named.is_none() && !self.tenancy.has_tenants() {
            return Ok(self.default_router());
        }
        let owner = bearer(headers).map_or(Owner::Nobody, |secret| self.tenancy.owner(secret));
        match (named, owner) {
            (None, Owner::Tenant(served)) => Ok(self.tenant_router(&served.name, &served.engine)),
            (None, _) => Ok(self.default_router()),
            (Some(DEFAULT_TENANT), Owner::Default) => Ok(self.default_router()),
            (Some(named), Owner::Tenant(served)) if named == served.name => {
                Ok(self.tenant_router(&served.name, &served.engine))
            }
            (Some(_), Owner::Default | Owner::Tenant(..)) => {
                Err(ApiError::Denied(Denied::OtherTenant))
            }
            // No valid key: the default tenant refuses it as usual (or lets
            // it through while its API is open); another tenant is reached
            // only with one of its own keys, never openly.
            (Some(DEFAULT_TENANT), Owner::Nobody) => Ok(self.default_router()),
            (Some(_), Owner::Nobody) => Err(ApiError::Denied(Denied::UnknownTenant)),
        }
    }
}

/// Proof that the request carries an admin key of the default tenant: only
/// the operator of the deployment manages tenants. Checked before the body
/// is read, so a refused request learns nothing about its body.
pub struct Operator;

impl FromRequestParts<Dispatch> for Operator {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        dispatch: &Dispatch,
    ) -> Result<Operator, ApiError> {
        let headers = &parts.headers;
        let named = headers.get(TENANT_HEADER);
        let other = bearer(headers)
            .is_some_and(|secret| matches!(dispatch.tenancy.owner(secret), Owner::Tenant(..)));
        if other || named.is_some_and(|n| n != DEFAULT_TENANT) {
            return Err(ApiError::Denied(Denied::OtherTenant));
        }
        authorize(dispatch.tenancy.default_engine(), headers, Scope::Admin).map(|()| Operator)
    }
}

/// The tenant routes' path.
const TENANTS_PATH: &str = "/api/v2/gamify/admin/tenants";

/// The whole API for every tenant, and the tenant routes: a service that
/// hands each request to its tenant's router, with no routing of its own
/// in front (every request passes through it).
#[derive(Clone)]
pub struct App {
    dispatch: Dispatch,
    operator: Router,
}

/// The whole API for every tenant of `tenancy`, and the tenant routes.
pub fn app(tenancy: Tenancy) -> App {
    let default_engine = tenancy.default_engine().clone();
    let dispatch = Dispatch {
        default: super::router(default_engine.clone()),
        tenancy,
        routers: Arc::default(),
    };
    let operator = Router::new()
        .route(TENANTS_PATH, get(list_tenants).post(create_tenant))
        .method_not_allowed_fallback(handlers::method_not_allowed)
        .layer(DefaultBodyLimit::max(
            default_engine.limits().max_body_bytes,
        ))
        .layer(super::log::LogLayer::new(default_engine))
        .with_state(dispatch.clone());
    App { dispatch, operator }
}

impl Service<Request> for App {
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    /// Hands the request to its tenant's routes; the answer says which
    /// tenant it is from (`Gamify-Tenant`).
    fn call(&mut self, request: Request) -> Self::Future {
        if request.uri().path() == TENANTS_PATH {
            return Box::pin(self.operator.call(request));
        }
        let picked = if open_path(request.uri().path()) {
            Ok(self.dispatch.default_router())
        } else {
            self.dispatch.pick(request.headers())
        };
        match picked {
            Ok((tenant, mut router)) => {
                let answer = router.call(request);
                Box::pin(async move {
                    let mut response = answer.await?;
                    response.headers_mut().insert(TENANT_HEADER, tenant);
                    Ok(response)
                })
            }
            Err(e) => {
                let response = e.into_response();
                Box::pin(async move { Ok(response) })
            }
        }
    }
}

/// Whether `path` is a route that needs no key and answers alike for every
/// tenant (health, metrics, the contract, the web pages' files; see
/// [`super::router`]). Those go to the default tenant's routes whatever
/// `Gamify-Tenant` says, so that a proxy adding the header to every request
/// does not turn a health check into a 401.
fn open_path(path: &str) -> bool {
    matches!(
        path,
        "/healthz" | "/readyz" | "/metrics" | "/openapi.json" | "/docs" | "/ui"
    ) || path.starts_with("/ui/")
}

/// Make a tenant (the default tenant's admin keys only): its own store,
/// rules (the brief's), boards and keys. The answer carries its first key's
/// secret, shown only here.
#[utoipa::path(
    post,
    path = "/api/v2/gamify/admin/tenants",
    tag = "admin",
    request_body = TenantRequest,
    security(("api_key" = ["admin"])),
    responses(
        (status = 201, body = TenantCreated),
        (status = 403, description = "A key of another tenant than the default one", body = ErrorResponse),
        (status = 409, description = "The name is taken", body = ErrorResponse),
        (status = 422, description = "The name breaks a rule", body = ErrorResponse),
    )
)]
pub async fn create_tenant(
    _: Operator,
    State(dispatch): State<Dispatch>,
    ApiJson(request): ApiJson<TenantRequest>,
) -> Result<Response, ApiError> {
    let created = dispatch.tenancy.create(&request.name).await?;
    Ok((StatusCode::CREATED, ApiJson(created)).into_response())
}

/// The tenants (the default tenant's admin keys only): `default` first,
/// then the others, oldest first.
#[utoipa::path(
    get,
    path = "/api/v2/gamify/admin/tenants",
    tag = "admin",
    security(("api_key" = ["admin"])),
    responses(
        (status = 200, body = Vec<TenantResponse>),
        (status = 403, description = "A key of another tenant than the default one", body = ErrorResponse),
    )
)]
pub async fn list_tenants(
    _: Operator,
    State(dispatch): State<Dispatch>,
) -> Result<ApiJson<Vec<TenantResponse>>, ApiError> {
    Ok(ApiJson(dispatch.tenancy.list().await?))
}

#[cfg(test)]
mod tests {
    use super::open_path;

    /// The contract's routes without a key are the open paths; every keyed
    /// route goes through the tenant's choice.
    #[test]
    fn open_paths_are_the_contracts_routes_without_a_key() {
        let spec: serde_json::Value = serde_json::from_str(&super::super::openapi::spec_json())
            .expect("the contract is JSON");
        for (path, item) in spec["paths"].as_object().unwrap() {
            for (method, operation) in item.as_object().unwrap() {
                let keyed = operation.get("security").is_some();
                assert_eq!(open_path(path), !keyed, "{method} {path}");
            }
        }
        assert!(open_path("/ui/wallet") && open_path("/docs"));
    }
}
