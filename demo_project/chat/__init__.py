"""The chat app: `ChatHub`, the page, a login form and a sync view that broadcasts."""
