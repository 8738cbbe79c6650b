// Entry point: start the router and wire the header's "go to trace" box.

import {start, navigate} from './router.js';

document.getElementById('trace-jump').addEventListener('submit', (e) => {
  e.preventDefault();
  const input = e.target.elements.id;
  const id = input.value.trim().toLowerCase();
  if (!id) return;
  input.value = '';
  navigate(`/trace/${encodeURIComponent(id)}`);
});

start();
