// Resolves after event.ms milliseconds (config.json caps it at 1 s, so ms > 1000 times out).
exports.main = (event) =>
  new Promise((resolve) => setTimeout(() => resolve({ slept: event.ms ?? 200 }), event.ms ?? 200));
