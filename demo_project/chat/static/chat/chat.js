// The chat page: the official SignalR client (global `signalR` from signalr.min.js) talking
// to ChatHub. Every message that arrives is logged with the route it came by.
(function () {
  "use strict";

  const config = JSON.parse(document.getElementById("chat-config").textContent);
  const $ = (id) => document.getElementById(id);
  const log = $("log");
  const errors = $("errors");
  const users = new Map(config.users.map((u) => [u.id, u.name]));
  let joinedRooms = [];
  let subscription = null;

  function time() {
    return new Date().toLocaleTimeString([], { hour12: false });
  }

  function add(list, className, parts, attrs) {
    const item = document.createElement("li");
    item.className = className;
    for (const [key, value] of Object.entries(attrs || {})) item.dataset[key] = value;
    const stamp = document.createElement("time");
    stamp.textContent = time();
    item.append(stamp);
    for (const part of parts) item.append(part);
    list.append(item);
    item.scrollIntoView({ block: "nearest" });
    return item;
  }

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    node.textContent = text;
    return node;
  }

  function routeLabel(meta) {
    switch (meta.route) {
      case "room": return "room #" + meta.room;
      case "private": return "private";
      case "server": return "server broadcast";
      case "presence": return "presence";
      default: return "all";
    }
  }

  function showError(where, err) {
    const text = (err && err.message) || String(err);
    add(errors, "error", [el("span", "", where + ": " + text)]);
  }

  // Errors that escaped everything else still belong on the page, not only in the console.
  window.addEventListener("error", (event) => showError("Script error", event.message));
  window.addEventListener("unhandledrejection", (event) => showError("Unhandled", event.reason));

  if (typeof signalR === "undefined") {
    showError("Setup", "signalr.min.js did not load; run `npm install` in the repository");
    return;
  }

  const connection = new signalR.HubConnectionBuilder()
    .withUrl(config.hubUrl)
    .withAutomaticReconnect()
    .configureLogging(signalR.LogLevel.Warning)
    .build();

  function showState(note) {
    const state = connection.state;
    $("state").textContent = note ? state + " (" + note + ")" : state;
    $("state").dataset.state = state;
    $("connection-id").textContent = connection.connectionId || "-";
    const connected = state === signalR.HubConnectionState.Connected;
    for (const button of document.querySelectorAll(".controls button")) button.disabled = !connected;
    $("counter-start").disabled = !connected || subscription !== null;
    $("counter-cancel").disabled = !connected || subscription === null;
  }

  // -- what the hub sends ----------------------------------------------------------------

  connection.on("ReceiveMessage", (user, text, meta) => {
    meta = meta || { route: user === "server" ? "server" : "all" };
    const who = meta.route === "private" ? meta.from.name + " \u2192 " + meta.to.name : user;
    const parts = [
      el("span", "route route-" + meta.route, routeLabel(meta)),
      el("b", "who", who),
      el("span", "text", text),
    ];
    if (meta.via) {
      parts.push(el("span", "via", "sent by " + meta.via + " in thread " + meta.thread +
        ", asked by " + meta.by));
    }
    add(log, "message", parts, { route: meta.route });
  });

  connection.on("Notice", (text, meta) => {
    add(log, "notice", [
      el("span", "route route-" + meta.route, routeLabel(meta)),
      el("span", "text", text),
    ], { route: meta.route, notice: "1" });
  });

  connection.on("Presence", (online) => {
    $("online").textContent = online.length
      ? online.map((u) => u.name + " (id " + u.id + ")").join(", ")
      : "nobody";
    const select = $("private-to");
    for (const u of online) {
      if (u.id === config.me.id || users.has(u.id)) continue;
      users.set(u.id, u.name);
      select.append(new Option(u.name + " (id " + u.id + ")", u.id));
    }
    const ids = new Set(online.map((u) => u.id));
    for (const option of select.options) option.classList.toggle("offline", !ids.has(option.value));
  });

  connection.onreconnecting((error) => showState(error ? error.message : "retrying"));
  connection.onreconnected(() => {
    showState();
    // Group membership belongs to the old connection: join the rooms again.
    const rooms = joinedRooms;
    joinedRooms = [];
    for (const room of rooms) joinRoom(room);
  });
  connection.onclose((error) => {
    showState(error ? error.message : "closed");
    if (error) showError("Connection", error);
  });

  // -- what the page asks ----------------------------------------------------------------

  async function call(where, method, ...args) {
    try {
      return await connection.invoke(method, ...args);
    } catch (err) {
      showError(where, err);
      return undefined;
    }
  }

  function showRooms(rooms) {
    if (!Array.isArray(rooms)) return;
    joinedRooms = rooms;
    $("rooms").textContent = rooms.length ? rooms.map((r) => "#" + r).join(", ") : "none";
    const select = $("room-target");
    const chosen = select.value;
    if (rooms.length) {
      select.replaceChildren(...rooms.map((r) => new Option("#" + r, r)));
      if (rooms.includes(chosen)) select.value = chosen;
    } else {
      select.replaceChildren(new Option("no room yet", ""));
    }
  }

  async function joinRoom(room) {
    showRooms(await call("Join room", "JoinRoom", room));
  }

  function onSubmit(id, handler) {
    $(id).addEventListener("submit", (event) => {
      event.preventDefault();
      handler();
    });
  }

  onSubmit("all-form", async () => {
    await call("Send", "SendMessage", config.me.name, $("all-text").value);
    $("all-text").value = "";
  });

  onSubmit("room-form", () => joinRoom($("room-name").value));

  $("leave-room").addEventListener("click", async () => {
    showRooms(await call("Leave room", "LeaveRoom", $("room-name").value));
  });

  onSubmit("room-message-form", async () => {
    const room = $("room-target").value;
    if (!room) {
      showError("Room message", "join a room first");
      return;
    }
    await call("Room message", "SendToRoom", room, config.me.name, $("room-text").value);
    $("room-text").value = "";
  });

  onSubmit("private-form", async () => {
    const to = $("private-to").value;
    if (!to) {
      showError("Private message", "nobody to write to yet");
      return;
    }
    await call("Private message", "SendPrivate", to, $("private-text").value);
    $("private-text").value = "";
  });

  function stopCounter(status) {
    $("counter-status").textContent = status;
    subscription = null;
    $("counter-start").disabled = connection.state !== signalR.HubConnectionState.Connected;
    $("counter-cancel").disabled = true;
  }

  onSubmit("counter-form", () => {
    const count = parseInt($("counter-count").value, 10);
    const delay = parseInt($("counter-delay").value, 10);
    $("counter-value").textContent = "0";
    $("counter-status").textContent = "streaming\u2026";
    $("counter-start").disabled = true;
    $("counter-cancel").disabled = false;
    subscription = connection.stream("Counter", count, delay).subscribe({
      next: (n) => { $("counter-value").textContent = String(n); },
      complete: () => stopCounter("completed"),
      error: (err) => {
        stopCounter("failed");
        showError("Counter", err);
      },
    });
  });

  $("counter-cancel").addEventListener("click", () => {
    if (subscription === null) return;
    // dispose() sends CancelInvocation; the hub's generator stops at its next await.
    subscription.dispose();
    stopCounter("cancelled at " + $("counter-value").textContent);
  });

  $("broadcast").addEventListener("click", async () => {
    try {
      const response = await fetch(config.broadcastUrl, {
        method: "POST",
        headers: { "X-CSRFToken": config.csrfToken },
        credentials: "same-origin",
      });
      if (!response.ok) throw new Error("HTTP " + response.status + " " + (await response.text()));
    } catch (err) {
      showError("Broadcast", err);
    }
  });

  // -- go --------------------------------------------------------------------------------

  async function start() {
    showState("connecting");
    try {
      await connection.start();
      showState();
    } catch (err) {
      showState("start failed");
      showError("Connect", err);
    }
  }

  showRooms([]);
  start();
})();
