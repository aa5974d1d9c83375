// The command registry. Each command lives in commands/<name>.ts; adding
// one is a new file and one line here. A command module imports only light
// modules statically (its metadata is read at every start-up); see ./command.ts.

import { command as host } from './commands/host.ts';
import { command as kernelsFetch } from './commands/kernels-fetch.ts';
import { command as kernelsBuild } from './commands/kernels-build.ts';
import { command as kernelsList } from './commands/kernels-list.ts';
import { command as kernelsNews } from './commands/kernels-news.ts';
import { command as kernelsCompat } from './commands/kernels-compat.ts';
import { command as run } from './commands/run.ts';
import { command as scenariosList } from './commands/scenarios-list.ts';
import { command as simulate } from './commands/simulate.ts';
import { command as table } from './commands/table.ts';
import { command as bisect, stepCommand as bisectStep } from './commands/bisect.ts';
import { command as report } from './commands/report.ts';
import { command as diff } from './commands/diff.ts';
import { command as merge } from './commands/merge.ts';
import { command as classify } from './commands/classify.ts';
import { command as explain } from './commands/explain.ts';
import { command as bugreport } from './commands/bugreport.ts';
import { command as schema } from './commands/schema.ts';
import { kcidbCommand as exportKcidb, kselftestCommand as exportKselftest, ktapCommand as exportKtap } from './commands/export.ts';
import type { Command } from './command.ts';

export type { Command } from './command.ts';

export const COMMANDS: Command[] = [run, simulate, kernelsList, kernelsNews, kernelsCompat, kernelsFetch, kernelsBuild, scenariosList, table, host, bisect, bisectStep, report, diff, merge, classify, explain, exportKcidb, exportKtap, exportKselftest, bugreport, schema];
