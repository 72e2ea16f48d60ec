/* Preview what a typed deferral threshold would decide, from the confidence report's curve. */
document.addEventListener("DOMContentLoaded", () => {
  const input = document.getElementById("threshold-free");
  const preview = document.getElementById("threshold-preview");
  const source = document.getElementById("deferral-curve");
  if (!input || !preview || !source) return;
  const curve = JSON.parse(source.textContent);
  const fixed = (value, digits) => (value === null || !Number.isFinite(value) ? null : value.toFixed(digits));

  const describe = () => {
    const threshold = Number.parseFloat(input.value);
    if (input.value.trim() === "" || !Number.isFinite(threshold)) {
      preview.textContent = "Type a number from 0 to 1.";
      return;
    }
    if (threshold < 0 || threshold > 1) {
      preview.textContent = `A threshold lies from 0 to 1; ${input.value} does not.`;
      return;
    }
    if (!curve.n) {
      preview.textContent = "No item shown has a human decision and a prediction: nothing to preview.";
      return;
    }
    // Bins are 0.01 wide and closed on the left: read at the edge at or below the threshold.
    const index = Math.min(Math.max(Math.floor(threshold * 100 + 1e-9), 0), curve.thresholds.length - 1);
    const readAt = curve.thresholds[index];
    const items = curve.items[index];
    let text = `At ${input.value}: the model would decide ${items} of the ${curve.n} items shown`;
    if (items) {
      text += ` (${(100 * curve.share[index]).toFixed(1)}%), agreeing with the inspectors on ` +
        `${fixed(curve.agreement[index], 3)} of them (95% interval ${fixed(curve.low[index], 3)} ` +
        `to ${fixed(curve.high[index], 3)}).`;
      if (items < curve.min_items) text += ` Under ${curve.min_items} items: too few to rely on.`;
    } else {
      text += ".";
    }
    if (Math.abs(readAt - threshold) > 1e-9) text += ` Read at ${readAt.toFixed(2)} (bins 0.01 wide).`;
    preview.textContent = text;
  };
  input.addEventListener("input", describe);
  describe();
});
