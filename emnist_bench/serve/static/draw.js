// The drawing pad: pointer strokes (mouse, pen or finger) in black on white, sent as PNG to
// POST /predict while drawing (at most every LIVE_MS) and when a stroke ends; a chosen or
// dropped image file is sent as it is. Only the answer to the latest request is shown;
// #result's data-sent and data-shown count the requests sent and the last one shown.
"use strict";

const LIVE_MS = 250;
const BRUSH = 18; // pixels of the 280-pixel pad: strokes as thick, relative to the
                  // character, as EMNIST's

const pad = document.getElementById("pad");
const ink = pad.getContext("2d");
const result = document.getElementById("result");
const topList = document.getElementById("top");
const message = document.getElementById("message");
const seen = document.getElementById("seen");
const preview = document.getElementById("preview");
let drawing = false;
let last = null;
let lastLive = 0;
let sent = 0;
let shown = 0;

function clearPad() {
  ink.fillStyle = "#fff";
  ink.fillRect(0, 0, pad.width, pad.height);
  topList.replaceChildren();
  seen.getContext("2d").clearRect(0, 0, seen.width, seen.height);
  message.textContent = "Draw to see what the model reads.";
  preview.hidden = true;
}

function position(event) {
  const box = pad.getBoundingClientRect();
  return [(event.clientX - box.left) * pad.width / box.width,
          (event.clientY - box.top) * pad.height / box.height];
}

function strokeTo(point) {
  ink.strokeStyle = "#000";
  ink.fillStyle = "#000";
  ink.lineWidth = BRUSH;
  ink.lineCap = "round";
  ink.lineJoin = "round";
  ink.beginPath();
  if (last === null) {
    ink.arc(point[0], point[1], BRUSH / 2, 0, 2 * Math.PI);
    ink.fill();
  } else {
    ink.moveTo(last[0], last[1]);
    ink.lineTo(point[0], point[1]);
    ink.stroke();
  }
  last = point;
}

// The server takes only image/png and image/jpeg (which a cross-site form cannot send); a
// file of another type is sent as it is and the server says what it takes.
function post(body, number) {
  fetch("/predict", { method: "POST", body: body,
                      headers: { "Content-Type": body.type || "application/octet-stream" } })
    .then((response) => response.json())
    .catch((error) => ({ error: String(error) }))
    .then((answer) => {
      if (number < shown) return; // a later answer is already on show
      shown = number;
      show(answer);
      result.dataset.shown = String(number);
    });
}

function sendDrawing() {
  const number = ++sent;
  result.dataset.sent = String(number);
  pad.toBlob((blob) => post(blob, number), "image/png");
}

function sendFile(file) {
  if (!file) return;
  const number = ++sent;
  result.dataset.sent = String(number);
  preview.src = URL.createObjectURL(file);
  preview.hidden = false;
  post(file, number);
}

function show(answer) {
  topList.replaceChildren();
  if (answer.error) {
    message.textContent = answer.error;
    return;
  }
  message.textContent = "";
  for (const item of answer.top) {
    const row = document.createElement("li");
    row.dataset.label = item.label;
    row.dataset.probability = String(item.probability);
    const label = document.createElement("span");
    label.className = "label";
    label.textContent = item.label;
    const bar = document.createElement("span");
    bar.className = "bar";
    bar.style.width = `${Math.round(item.probability * 150)}px`;
    const share = document.createElement("span");
    share.textContent = `${(item.probability * 100).toFixed(1)}%`;
    row.append(label, bar, share);
    topList.append(row);
  }
  const pixels = seen.getContext("2d").createImageData(28, 28);
  answer.seen.flat().forEach((value, index) => {
    pixels.data.set([value, value, value, 255], index * 4);
  });
  seen.getContext("2d").putImageData(pixels, 0, 0);
}

pad.addEventListener("pointerdown", (event) => {
  event.preventDefault();
  pad.setPointerCapture(event.pointerId);
  drawing = true;
  last = null;
  preview.hidden = true;
  strokeTo(position(event));
});
pad.addEventListener("pointermove", (event) => {
  if (!drawing) return;
  strokeTo(position(event));
  if (performance.now() - lastLive > LIVE_MS) {
    lastLive = performance.now();
    sendDrawing();
  }
});
for (const name of ["pointerup", "pointercancel"]) {
  pad.addEventListener(name, () => {
    if (!drawing) return;
    drawing = false;
    last = null;
    sendDrawing();
  });
}
document.getElementById("clear").addEventListener("click", clearPad);
document.getElementById("file").addEventListener("change", (event) => {
  sendFile(event.target.files[0]);
});
const drop = document.getElementById("drop");
drop.addEventListener("dragover", (event) => {
  event.preventDefault();
  drop.classList.add("dragging");
});
drop.addEventListener("dragleave", () => drop.classList.remove("dragging"));
drop.addEventListener("drop", (event) => {
  event.preventDefault();
  drop.classList.remove("dragging");
  sendFile(event.dataTransfer.files[0]);
});
fetch("/info").then((response) => response.json()).then((info) => {
  document.getElementById("run").textContent =
    `Model: ${info.run}, ${info.classes.length} characters.`;
});
clearPad();
