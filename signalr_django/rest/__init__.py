"""A REST management API shaped like Azure SignalR Service's data-plane API (2022-06-01).

Any backend (or a cron job, or `curl`) can send to all, users, groups and connections,
manage group membership, check existence and close connections, authenticated with an
HS256 bearer token signed with `SIGNALR["REST_API"]["ACCESS_KEY"]`. See docs/rest-api.md.
"""
