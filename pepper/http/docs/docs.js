// Swagger UI over pepper's OpenAPI document. The session cookie authenticates the page's calls (or a bearer
// token given with "Authorize"); a change sent with the cookie carries the CSRF token set beside it.

function csrf() {
  const found = document.cookie.split("; ").find((c) => c.startsWith("pepper_csrf="));
  return found ? decodeURIComponent(found.slice("pepper_csrf=".length)) : "";
}

const SAFE = new Set(["GET", "HEAD", "OPTIONS"]);

window.ui = window.SwaggerUIBundle({
  url: "/api/v1/openapi.json",
  dom_id: "#swagger-ui",
  layout: "BaseLayout",
  deepLinking: true,
  showExtensions: true,
  validatorUrl: null,
  requestInterceptor: (request) => {
    if (!SAFE.has((request.method || "GET").toUpperCase())) request.headers["X-CSRF-Token"] = csrf();
    request.credentials = "same-origin";
    return request;
  },
});
