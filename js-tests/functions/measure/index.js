// Reports how much data arrived, without echoing it back (for payloads near the 5 MB limit).
exports.main = async (event) => ({ length: typeof event.payload === 'string' ? event.payload.length : -1 });
