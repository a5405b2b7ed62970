// The trivial Probot app of bench/door-side-by-side.sh: it handles issues.labeled and does
// nothing with it. Probot verifies X-Hub-Signature-256 and dispatches to this handler before
// answering; nothing is stored.
module.exports = (app) => {
  app.on("issues.labeled", async (context) => {
    void context.payload.label;
  });
};
