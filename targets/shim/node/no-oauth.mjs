// What `mcp-deploy:oauth` resolves to in a bundle whose auth mode is not oauth (see
// oauth.mjs): no oauth part of the gate, and no jose in the bundle.

export const makeOAuth = null;
