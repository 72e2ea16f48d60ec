/* Start Swagger UI with the settings the page carries as JSON (no inline script: the CSP holds). */
document.addEventListener("DOMContentLoaded", () => {
  const config = JSON.parse(document.getElementById("swagger-settings").textContent);
  const csrfToken = document.body.dataset.csrfToken;
  config.dom_id = "#swagger-ui";
  config.presets = [SwaggerUIBundle.presets.apis, SwaggerUIBundle.SwaggerUIStandalonePreset];
  // Operations behind the browser session need Django's CSRF header; token calls ignore it.
  config.requestInterceptor = (request) => {
    if (csrfToken) request.headers["X-CSRFToken"] = csrfToken;
    return request;
  };
  SwaggerUIBundle(config);
});
