// Small progressive enhancements; every page works without them.
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  // Language and filter selects submit their form on change.
  for (const select of document.querySelectorAll("select.autosubmit")) {
    select.addEventListener("change", () => select.form.submit());
  }

  // Buttons that need a second thought (resolving, starting a round) ask first.
  for (const button of document.querySelectorAll("[data-confirm]")) {
    button.addEventListener("click", (event) => {
      if (!window.confirm(button.dataset.confirm)) event.preventDefault();
    });
  }

  // A [data-list=name] is refilled with one copy of its <template> (data-template) per item of
  // that key; each [data-item=key] in a copy gets the item's text, and its data-item-href a link.
  const refill = (list, items) => {
    const template = document.getElementById(list.dataset.template);
    list.replaceChildren(...items.map((item) => {
      const copy = template.content.firstElementChild.cloneNode(true);
      for (const slot of copy.querySelectorAll("[data-item]")) {
        slot.textContent = item[slot.dataset.item] ?? "";
        if (slot.dataset.itemHref) slot.href = item[slot.dataset.itemHref];
      }
      return copy;
    }));
  };

  // Live figures: elements with data-refresh-url are refilled from that JSON every few seconds;
  // each [data-field=name] inside gets the value of that key.
  for (const box of document.querySelectorAll("[data-refresh-url]")) {
    const every = Number(box.dataset.refreshSeconds || 5) * 1000;
    const refresh = async () => {
      try {
        const response = await fetch(box.dataset.refreshUrl, {headers: {Accept: "application/json"},
                                                               credentials: "same-origin"});
        if (!response.ok) return;
        const data = await response.json();
        for (const slot of box.querySelectorAll("[data-field]")) {
          if (slot.dataset.field in data) slot.textContent = data[slot.dataset.field];
        }
        for (const list of box.querySelectorAll("[data-list]")) {
          if (Array.isArray(data[list.dataset.list])) refill(list, data[list.dataset.list]);
        }
        box.dataset.updated = new Date().toISOString();
      } catch (error) {
        // Offline for a moment: keep the last figures and try again.
      }
    };
    setInterval(refresh, every);
  }
});
