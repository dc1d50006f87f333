"""Connection handlers: raw SignalR connections without the hub protocol.

ASP.NET Core's `MapConnectionHandler<T>(path)`: negotiate and the three transports as for
hubs, but the application reads and writes the connection's messages itself. See
`ConnectionHandler` and `signalr_django.map_connection`.
"""
