// The salebeacon command-queue stub, in a same-origin file so pages run under a strict CSP
// (script-src 'self' 'wasm-unsafe-eval'). Calls made before the loader arrives are queued.
window.salebeacon=window.salebeacon||function(){(salebeacon.q=salebeacon.q||[]).push(arguments)};
