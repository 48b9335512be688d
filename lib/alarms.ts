import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as cwActions from 'aws-cdk-lib/aws-cloudwatch-actions';
import type * as sns from 'aws-cdk-lib/aws-sns';
import type { Construct } from 'constructs';

export interface ThresholdAlarmOptions {
  readonly metric: cloudwatch.IMetric;
  /** Fires at or above this. */
  readonly threshold: number;
  readonly description: string;
  /** Where ALARM (and, with `notifyOk`, OK) goes. @default - no action */
  readonly topic?: sns.ITopic;
  /** @default false */
  readonly notifyOk?: boolean;
  /** @default 1 */
  readonly evaluationPeriods?: number;
  /** @default - evaluationPeriods */
  readonly datapointsToAlarm?: number;
}

/**
 * An alarm at or above a threshold, where no data is not a breach: no traffic is not an outage, and a
 * dead backend shows in metrics that do have data (errors, 5XX, queue depth).
 */
export function thresholdAlarm(scope: Construct, id: string, o: ThresholdAlarmOptions): cloudwatch.Alarm {
  const alarm = new cloudwatch.Alarm(scope, id, {
    alarmDescription: o.description,
    metric: o.metric,
    threshold: o.threshold,
    evaluationPeriods: o.evaluationPeriods ?? 1,
    datapointsToAlarm: o.datapointsToAlarm,
    comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
    treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
  });
  if (o.topic) {
    const action = new cwActions.SnsAction(o.topic);
    alarm.addAlarmAction(action);
    if (o.notifyOk) alarm.addOkAction(action);
  }
  return alarm;
}
