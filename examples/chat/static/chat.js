// The chat's one script. On the login page it checks the name as the server will; on the
// chat page it keeps one WebSocket to /ws, JSON frames both ways.
// User text only ever reaches the page through textContent, never as HTML.
"use strict";

// -- the login form -------------------------------------------------------------------------

(() => {
  const input = document.getElementById("username");
  if (!input) return; // the chat page
  const errorLine = document.getElementById("login-error");

  // The server's rules (app.py: clean_username and username_problem), with its messages.
  const NAME_MAX = Number(input.dataset.max);
  const NAME_MAX_MARKS = Number(input.dataset.maxMarks);
  const EDGE_SPACES = /^[\p{Zs}\t\n\r]+|[\p{Zs}\t\n\r]+$/gu;
  const INVISIBLE = /^\p{Default_Ignorable_Code_Point}$/u;
  const LETTER_OR_DIGIT = /^[\p{L}\p{Nd}]$/u;
  const MARK = /^[\p{Mn}\p{Mc}]$/u;

  function nameProblem(typed) {
    const name = typed.replace(EDGE_SPACES, "").normalize("NFC");
    if (!name) return "Please enter a name.";
    const chars = Array.from(name); // code points, as Python counts them
    if (chars.length > NAME_MAX) return `A name has at most ${NAME_MAX} characters.`;
    let marks = -1; // combining marks after the last letter or digit; -1: nothing to attach to
    for (const char of chars) {
      if (INVISIBLE.test(char)) return "A name cannot contain invisible characters.";
      if (LETTER_OR_DIGIT.test(char)) {
        marks = 0;
      } else if (MARK.test(char)) {
        if (marks < 0) return "An accent or vowel sign must follow a letter.";
        marks += 1;
        if (marks > NAME_MAX_MARKS) {
          return `A letter carries at most ${NAME_MAX_MARKS} accents or signs.`;
        }
      } else if (char === "_" || char === "-") {
        marks = -1;
      } else {
        return "A name may only contain letters, digits, _ and -.";
      }
    }
    return "";
  }

  function check() {
    input.setCustomValidity(nameProblem(input.value));
  }

  input.addEventListener("input", () => {
    check();
    if (input.validity.valid) errorLine.hidden = true;
  });
  // On submit, say why in the page, where it stays, instead of the browser's passing bubble.
  input.addEventListener("invalid", (event) => {
    event.preventDefault();
    errorLine.textContent = input.validationMessage;
    errorLine.hidden = false;
    input.focus();
  });
  check(); // the name sent back with the server's error, if any (which stays shown)
})();

// -- the chat page --------------------------------------------------------------------------

(() => {
  const root = document.getElementById("chat");
  if (!root) return; // the login page

  const me = root.dataset.username;
  const role = root.dataset.role; // "admin", "member" or "banned" (see app.py: ROLE)
  const MAX_TEXT = Number(root.dataset.maxText); // characters (code points) per message
  const $ = (id) => document.getElementById(id);
  const messages = $("messages");
  const empty = $("empty");
  const users = $("users");
  const onlineCount = $("online-count");
  const composer = $("composer");
  const input = $("text");
  const sendButton = $("send");
  const status = $("status");
  const notice = $("notice");
  const errorLine = $("error");
  const counter = $("counter");
  const info = $("info");
  const themeForm = $("theme");
  const themeButton = themeForm.querySelector("button");
  const csrf = themeForm.elements.csrf.value; // the session's token, as every form sends it

  // Close codes of aio_sessions: this session may no longer use the chat. Reconnecting
  // cannot help, so the page says why and stops. `ended`: the session itself is gone.
  const SESSION_CLOSES = new Map([
    [4001, { ended: true, title: "You were logged out.", detail: "", link: "Log in again" }],
    [
      4002,
      {
        ended: true,
        title: "You were logged out:",
        detail: "your session expired.",
        link: "Log in again",
      },
    ],
    [
      4003, // CLOSE_SESSION_FORBIDDEN: the socket's guard (app.py: may_chat) turned false
      {
        ended: false,
        title: "Session forbidden:",
        detail: "you no longer have access to this room: an admin removed you.",
        link: "Back to the start",
      },
    ],
  ]);
  // What a refused handshake means, asked over plain HTTP (see handshakeRefused).
  const REFUSED_HANDSHAKES = new Map([
    [401, 4001],
    [403, 4003],
  ]);
  const FIRST_DELAY = 500; // ms before the first reconnection attempt
  const MAX_DELAY = 30000;

  let socket = null;
  let attempt = 0;
  let retryTimer = null;
  let stopped = false; // for good: no more reconnecting
  let errorTimer = null;

  // -- the connection -------------------------------------------------------------------

  function connect() {
    retryTimer = null;
    const url = new URL("/ws", location.href);
    url.protocol = location.protocol === "https:" ? "wss:" : "ws:";
    const ws = new WebSocket(url);
    let opened = false;
    socket = ws;
    setStatus("connecting", "Connecting…");

    ws.addEventListener("open", () => {
      opened = true;
      attempt = 0;
      setStatus("open", "Connected");
      setComposer(true);
    });
    ws.addEventListener("message", (event) => {
      let frame;
      try {
        frame = JSON.parse(event.data);
      } catch {
        return;
      }
      onFrame(frame);
    });
    ws.addEventListener("close", (event) => {
      socket = null;
      setComposer(false);
      onClose(event.code, opened);
    });
  }

  async function onClose(code, opened) {
    if (SESSION_CLOSES.has(code)) return endChat(SESSION_CLOSES.get(code));
    const refused = opened ? null : await handshakeRefused();
    if (refused !== null) return endChat(SESSION_CLOSES.get(refused));
    scheduleReconnect();
  }

  // A browser does not tell why a handshake failed. Ask the same guard over plain HTTP:
  // 401 means the session is gone, 403 that it may not use the chat, and retrying cannot
  // help; the answer is the matching close code. Anything else (the server is down,
  // restarting...) is worth another try: null.
  async function handshakeRefused() {
    try {
      const response = await fetch("/ws", { cache: "no-store", credentials: "same-origin" });
      return REFUSED_HANDSHAKES.get(response.status) ?? null;
    } catch {
      return null;
    }
  }

  function scheduleReconnect() {
    if (stopped || retryTimer !== null) return;
    // Exponential backoff with jitter: 0.5 s, 1 s, 2 s... up to 30 s.
    const delay = Math.min(MAX_DELAY, FIRST_DELAY * 2 ** attempt) * (0.75 + Math.random() / 4);
    attempt += 1;
    setStatus("waiting", `Offline, retrying in ${Math.ceil(delay / 1000)} s`);
    retryTimer = setTimeout(connect, delay);
  }

  // Back online (laptop woke up, Wi-Fi returned): retry now instead of waiting.
  window.addEventListener("online", () => {
    if (retryTimer !== null) {
      clearTimeout(retryTimer);
      connect();
    }
  });

  // -- frames from the server --------------------------------------------------------------

  function onFrame(frame) {
    switch (frame.type) {
      case "history": // the whole conversation so far: on every (re)connection
        messages.replaceChildren();
        frame.messages.forEach(addMessage);
        showPlaceholder();
        scrollToEnd();
        break;
      case "message": {
        const follow = nearEnd() || frame.user === me;
        addMessage(frame);
        if (follow) scrollToEnd();
        break;
      }
      case "presence":
        showUsers(frame.users);
        break;
      case "error":
        showError(frame.error);
        break;
      case "theme": // on connection, and whenever the session's theme is saved anywhere
        applyTheme(frame.theme);
        break;
      case "notice": // pushed to every tab of this user (send_to_user), e.g. a new login
        showInfo(frame.text);
        break;
    }
  }

  function addMessage(message) {
    const item = element("li", "message");
    if (message.user === me) item.classList.add("mine");

    const initial = Array.from(message.user)[0] ?? "?"; // a code point, not half of one
    const avatar = element("span", "avatar", initial.toUpperCase());
    avatar.style.setProperty("--hue", hue(message.user));
    avatar.setAttribute("aria-hidden", "true");

    const when = new Date(message.ts * 1000);
    const time = element(
      "time",
      "time",
      when.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" }),
    );
    time.dateTime = when.toISOString();

    const meta = element("div", "meta");
    meta.append(element("span", "author", message.user), time);
    const body = element("div", "body");
    body.append(meta, element("p", "text", message.text));
    item.append(avatar, body);
    messages.append(item);
    showPlaceholder();
  }

  // "No messages yet" whenever the list is empty, after a reconnection too.
  function showPlaceholder() {
    empty.textContent = "No messages yet. Say hello!";
    empty.hidden = messages.childElementCount > 0;
  }

  function showUsers(names) {
    users.replaceChildren(
      ...names.map((name) => {
        const item = element("li", "user");
        const dot = element("span", "dot");
        dot.style.setProperty("--hue", hue(name));
        item.append(dot, element("span", "name", name));
        if (name === me) item.append(element("span", "you", "you"));
        else if (role === "admin") item.append(removeButton(name));
        return item;
      }),
    );
    onlineCount.textContent = String(names.length);
  }

  // An admin's button: the server bans every session of the user, and their sockets close
  // with 4003 wherever they are; the presence list then drops them.
  function removeButton(name) {
    const button = element("button", "remove secondary", "Remove");
    button.type = "button";
    button.setAttribute("aria-label", `Remove ${name} from the room`);
    button.addEventListener("click", async () => {
      button.disabled = true;
      const response = await post("/remove", { username: name });
      if (response) {
        showInfo(`${name} was removed from the room.`);
      } else {
        button.disabled = false;
        showError(`${name} was not removed: reload the page and try again.`);
      }
    });
    return button;
  }

  // A notice that stays until dismissed (the server's, or the answer to an admin's action).
  function showInfo(text) {
    $("info-text").textContent = text;
    info.hidden = false;
  }
  $("info-close").addEventListener("click", () => {
    info.hidden = true;
  });

  // The session may no longer use the chat (see SESSION_CLOSES): say why, do not reconnect.
  function endChat({ ended, title, detail, link: linkText }) {
    stopped = true;
    clearTimeout(retryTimer);
    retryTimer = null;
    setStatus("closed", ended ? "Signed out" : "No access");
    setComposer(false);
    users.replaceChildren();
    onlineCount.textContent = "0";
    if (ended) {
      // The session is gone: its name and its forms (whose token is dead) go too.
      document.querySelector(".me").hidden = true;
      $("logout").hidden = true;
      themeForm.hidden = true;
    }

    const link = element("a", "", linkText);
    link.href = "/";
    notice.replaceChildren(element("strong", "", title));
    if (detail) notice.append(" ", detail);
    notice.append(" ", link);
    notice.hidden = false;
  }

  // -- the theme ---------------------------------------------------------------------------

  // The theme lives in the session: this tab saves it over HTTP, and every tab of the
  // session (this one included) hears of it on its socket.
  function applyTheme(theme) {
    document.documentElement.dataset.theme = theme;
    const other = theme === "dark" ? "light" : "dark";
    themeButton.value = other;
    themeButton.textContent = `${other[0].toUpperCase()}${other.slice(1)} theme`;
  }

  themeForm.addEventListener("submit", async (event) => {
    event.preventDefault(); // no reload: the socket stays open
    const theme = themeButton.value;
    if (await post("/theme", { theme })) {
      applyTheme(theme); // at once, even while this tab's socket is reconnecting
    } else {
      showError("The theme was not changed: reload the page and try again.");
    }
  });

  // POST a form with the session's CSRF token; the response when it succeeded, else null.
  async function post(path, fields) {
    try {
      const response = await fetch(path, {
        method: "POST",
        body: new URLSearchParams({ ...fields, csrf }),
        credentials: "same-origin",
        redirect: "manual", // a 303 back to the page is success enough: no need to follow
      });
      return response.ok || response.type === "opaqueredirect" ? response : null;
    } catch {
      return null;
    }
  }

  // -- sending ----------------------------------------------------------------------------

  composer.addEventListener("submit", (event) => {
    event.preventDefault();
    const text = input.value;
    if (!text.trim()) return;
    const length = lengthOf(text);
    if (length > MAX_TEXT) {
      // Never cut it silently: keep the text so the person can shorten it.
      showError(
        `Your message has ${number(length)} characters, the limit is ${number(MAX_TEXT)}: ` +
          "shorten it. Nothing was sent.",
      );
      return;
    }
    if (!socket || socket.readyState !== WebSocket.OPEN) {
      showError("Not connected: your message was not sent.");
      return;
    }
    socket.send(JSON.stringify({ type: "message", text }));
    input.value = "";
    showCount();
  });

  // The count appears near the limit and turns red past it.
  input.addEventListener("input", showCount);

  function showCount() {
    const length = lengthOf(input.value);
    counter.textContent = `${number(length)} / ${number(MAX_TEXT)}`;
    counter.classList.toggle("over", length > MAX_TEXT);
    counter.hidden = length <= MAX_TEXT * 0.9;
  }

  // -- helpers ----------------------------------------------------------------------------

  function element(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  // Characters as the server counts them: code points, not UTF-16 units.
  function lengthOf(text) {
    let length = 0;
    for (const _ of text) length += 1;
    return length;
  }

  function number(n) {
    return n.toLocaleString("en");
  }

  function hue(name) {
    let hash = 0;
    for (const char of name) hash = (hash * 31 + char.codePointAt(0)) % 360;
    return String(hash);
  }

  function setStatus(state, text) {
    status.dataset.state = state;
    status.textContent = text;
  }

  function setComposer(enabled) {
    input.disabled = !enabled;
    sendButton.disabled = !enabled;
    if (enabled) input.focus();
  }

  function showError(text) {
    errorLine.textContent = text;
    errorLine.hidden = false;
    clearTimeout(errorTimer);
    errorTimer = setTimeout(() => {
      errorLine.hidden = true;
    }, 5000);
  }

  function nearEnd() {
    return messages.scrollHeight - messages.scrollTop - messages.clientHeight < 60;
  }

  function scrollToEnd() {
    messages.scrollTop = messages.scrollHeight;
  }

  // Banned before this page loaded: no socket to try, the guard would refuse it (403).
  if (role === "banned") endChat(SESSION_CLOSES.get(4003));
  else connect();
})();
