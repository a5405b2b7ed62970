// Probot 13 without express: its documented createNodeMiddleware on a bare node:http server
// (the leanest way Probot serves webhooks). Same app as `probot run ./app.js`.
const { createServer } = require("node:http");
const { createNodeMiddleware, createProbot } = require("probot");
const app = require("./app.js");

const middleware = createNodeMiddleware(app, {
  probot: createProbot(),
  webhooksPath: process.env.WEBHOOK_PATH || "/webhook",
});
createServer((req, res) => {
  middleware(req, res, () => {
    res.writeHead(404);
    res.end();
  });
}).listen(Number(process.env.PORT) || 3000, "127.0.0.1");
