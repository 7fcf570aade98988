// Child process of test/event-log.test.ts: appends one event to the log at argv[2] (a URL), says
// so on stdout, then waits to be killed (SIGKILL: nothing is closed or flushed on the way out).
import { createEventLog } from '../src/events/index.ts';

const [url, deliveryId] = process.argv.slice(2);
const log = createEventLog(url!, process.cwd());
const { event } = await log.append({ source: 'killed', type: 'ping', deliveryId: deliveryId!, payload: { deliveryId } });
process.stdout.write(`appended ${event.id}\n`);
setInterval(() => {}, 60_000);
